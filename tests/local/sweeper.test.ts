import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { command } from '../../functions/lib/local/command.ts';
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
