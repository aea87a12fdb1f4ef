import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TAG_RUN_ID, TAG_VALIDATED } from '../../functions/lib/constants.ts';
import { command } from '../../functions/lib/local/command.ts';
import {
  LOCAL_OWNER_ID,
  LocalImageStore,
} from '../../functions/lib/local/image-store.ts';
import { writeJsonFile } from '../../functions/lib/local/json-file.ts';
import {
  createNetwork,
  listLinks,
  listNamespaces,
  removeNetwork,
  reserveNetwork,
} from '../../functions/lib/local/netns.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import { LocalRegistryPublisher } from '../../functions/lib/local/publisher.ts';
import { mountsUnder } from '../../functions/lib/local/rootfs.ts';
import { runWorkDir } from '../../functions/lib/local/run-context.ts';
import {
  LocalLeftoverSweeper,
  OWNER_FILE,
} from '../../functions/lib/local/sweeper.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';

describeWithSystem(
  'LocalLeftoverSweeper',
  { root: true, tools: [TOOLS.ip, TOOLS.mount] },
  () => {
    let paths: LocalPaths;
    let reservations: string;
    const runIds: string[] = [];
    beforeEach(async () => {
      paths = localPaths(await mkdtemp(join(tmpdir(), 'sbc-ami-sweep-')));
      reservations = join(paths.home, 'subnets');
    });
    afterEach(async () => {
      for (const runId of runIds.splice(0)) {
        await new LocalLeftoverSweeper(paths, reservations).sweep(runId);
      }
      await rm(paths.home, { recursive: true, force: true });
    });

    /** What a run killed with SIGKILL leaves: namespace, veth, a mount. */
    async function leftoversOf(runId: string, ownerPid: number) {
      runIds.push(runId);
      const workDir = runWorkDir(paths, runId);
      await mkdir(join(workDir, 'host', 'rootfs', 'proc'), { recursive: true });
      await writeJsonFile(join(workDir, OWNER_FILE), {
        pid: ownerPid,
        startedAt: new Date().toISOString(),
      });
      const network = await reserveNetwork(runId, { dir: reservations });
      await createNetwork(network);
      await command('mount', [
        '-t',
        'tmpfs',
        'tmpfs',
        join(workDir, 'host', 'rootfs', 'proc'),
      ]);
      return { workDir, network };
    }

    it('removes what a run whose process is gone left behind', async () => {
      // Prepare
      const runId = `sbc-sweep-${process.pid}-a`;
      const { workDir, network } = await leftoversOf(runId, 999_999_999);

      // Act
      const report = await new LocalLeftoverSweeper(
        paths,
        reservations,
      ).sweepStale();

      // Assess
      expect(report.runs).toEqual([runId]);
      expect(report.leftBehind).toEqual([]);
      expect(report.removed).toEqual(
        expect.arrayContaining([
          `network namespace ${network.namespace}`,
          `folder ${workDir}`,
        ]),
      );
      expect(await listNamespaces()).not.toContain(network.namespace);
      expect(await listLinks()).not.toContain(network.hostLink);
      expect(await mountsUnder(workDir)).toEqual([]);
      expect(existsSync(workDir)).toBe(false);
      expect(await readdir(reservations)).toEqual([]);
    });

    it('discards the never-published images of a run whose process is gone', async () => {
      // Prepare: what quitting at once after the build leaves, beside an
      // image of the same run that was published and one validated.
      const runId = `sbc-sweep-${process.pid}-c`;
      await leftoversOf(runId, 999_999_999);
      const store = new LocalImageStore(paths);
      for (const [imageId, tags] of [
        ['img-c-unpublished', {}],
        ['img-c-published', {}],
        ['img-c-validated', { [TAG_VALIDATED]: 'true' }],
      ] as const) {
        const snapshotId = imageId.replace('img-', 'snap-');
        await mkdir(store.snapshotDir(snapshotId), { recursive: true });
        await store.putSnapshot({
          snapshotId,
          state: 'completed',
          encrypted: false,
          tags: { [TAG_RUN_ID]: runId },
        });
        await store.putImage({
          imageId,
          name: imageId,
          state: 'available',
          createdAt: new Date().toISOString(),
          architecture: 'x86_64',
          ownerId: LOCAL_OWNER_ID,
          public: false,
          tags: { [TAG_RUN_ID]: runId, ...tags },
          blockDevices: [{ deviceName: '/dev/xvda', snapshotId }],
        });
      }
      await new LocalRegistryPublisher(paths.registry).publish({
        imageId: 'img-c-published',
        runId,
        profileName: 'lab',
        description: 'published before the run died',
      });

      // Act
      const report = await new LocalLeftoverSweeper(
        paths,
        reservations,
      ).sweepStale();

      // Assess
      expect(report.runs).toEqual([runId]);
      expect(report.leftBehind).toEqual([]);
      expect(report.removed).toEqual(
        expect.arrayContaining([
          'image img-c-unpublished (never published)',
          'snapshot snap-c-unpublished (never published)',
        ]),
      );
      const left = (await store.listImages()).map((i) => i.imageId).sort();
      expect(left).toEqual(['img-c-published', 'img-c-validated']);
      const snapshots = (await store.listSnapshots()).map((s) => s.snapshotId);
      expect(snapshots.sort()).toEqual([
        'snap-c-published',
        'snap-c-validated',
      ]);
    });

    it('leaves a run whose process still runs alone', async () => {
      // Prepare
      const runId = `sbc-sweep-${process.pid}-b`;
      const { workDir, network } = await leftoversOf(runId, process.pid);

      // Act
      const report = await new LocalLeftoverSweeper(
        paths,
        reservations,
      ).sweepStale();

      // Assess
      expect(report.runs).toEqual([]);
      expect(await listNamespaces()).toContain(network.namespace);
      expect(await mountsUnder(workDir)).toHaveLength(1);
      await removeNetwork(network);
    });
  },
);
