import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quitMessage } from '../../cli/commands/local.ts';
import { processesUnder } from '../../functions/lib/local/command.ts';
import { LOCAL_MODE_TOOLS, REPO_ROOT } from '../../functions/lib/local/deps.ts';
import { LocalImageStore } from '../../functions/lib/local/image-store.ts';
import {
  listLinks,
  listNamespaces,
  networkNames,
} from '../../functions/lib/local/netns.ts';
import type { LocalPaths } from '../../functions/lib/local/paths.ts';
import { mountsUnder } from '../../functions/lib/local/rootfs.ts';
import { runWorkDir } from '../../functions/lib/local/run-context.ts';
import { LocalLeftoverSweeper } from '../../functions/lib/local/sweeper.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  RUN_TIMEOUT_MS,
  readRegistry,
  removeHome,
  reservationsOf,
  SHARED_CACHE,
  temporaryHome,
} from './support.ts';

describe('quitMessage', () => {
  it('lists what quitting at once leaves for the next run', () => {
    // Act
    const text = quitMessage([
      'work folder /w',
      'image img-1 (never published)',
    ]);

    // Assess
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^quitting at once; left for the next run's sweep/),
      '  - work folder /w',
      '  - image img-1 (never published)',
    ]);
  });
});

describeWithSystem(
  'sbc-ami local, interrupted three times',
  { root: true, tools: LOCAL_MODE_TOOLS },
  () => {
    let paths: LocalPaths;
    beforeAll(async () => {
      paths = await temporaryHome();
    });
    afterAll(async () => {
      await new LocalLeftoverSweeper(paths).sweepStale();
      await removeHome(paths);
    });

    it(
      'quits at once saying what it leaves, and the next sweep discards the unpublished image',
      async () => {
        // Prepare: the command in a process of its own, interrupted three
        // times once its test host runs (the image built, not published).
        const child = spawn(
          process.execPath,
          [
            join(REPO_ROOT, 'bin', 'sbc-ami.js'),
            'local',
            '--cache-dir',
            SHARED_CACHE,
          ],
          {
            env: { ...process.env, SBC_AMI_HOME: paths.home },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        let interrupted = false;
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (!interrupted && /kamailio\.service started/.test(stdout)) {
            interrupted = true;
            for (const delay of [0, 60, 120]) {
              setTimeout(() => child.kill('SIGINT'), delay);
            }
          }
        });

        // Act
        const exitCode = await new Promise<number | null>((done) => {
          child.once('exit', (code) => done(code));
        });

        // Assess: it quit, and said what it left.
        expect(interrupted, stdout).toBe(true);
        expect(exitCode, stderr).toBe(130);
        const runId = /run (sbc-[0-9a-f]{16})/.exec(stdout)?.[1] as string;
        const imageId = /unpacked (img-[0-9a-f]{16})/.exec(stdout)?.[1];
        expect(imageId).toBeDefined();
        expect(stderr).toContain("left for the next run's sweep");
        expect(stderr).toContain(`work folder ${runWorkDir(paths, runId)}`);
        expect(stderr).toContain(`image ${imageId} and snapshot snap-`);
        const store = new LocalImageStore(paths);
        const image = await store.describeImage(imageId as string);
        expect(image?.state).toBe('available');
        const snapshotId = image?.blockDevices[0]?.snapshotId as string;

        // Act: what the next run does first.
        const report = await new LocalLeftoverSweeper(paths).sweepStale();

        // Assess: the run, its image and everything else are gone.
        expect(report.runs).toEqual([runId]);
        expect(report.leftBehind).toEqual([]);
        expect(report.removed).toEqual(
          expect.arrayContaining([
            `image ${imageId} (never published)`,
            `snapshot ${snapshotId} (never published)`,
          ]),
        );
        expect(await store.describeImage(imageId as string)).toBeUndefined();
        expect(existsSync(store.snapshotDir(snapshotId))).toBe(false);
        expect(await readRegistry(paths)).toBeUndefined();
        const names = networkNames(runId);
        expect(await listNamespaces()).not.toContain(names.namespace);
        expect(await listLinks()).not.toContain(names.hostLink);
        const workDir = runWorkDir(paths, runId);
        expect(existsSync(workDir)).toBe(false);
        expect(await mountsUnder(paths.home)).toEqual([]);
        expect(await processesUnder(workDir)).toEqual([]);
        expect(await reservationsOf(runId)).toEqual([]);
      },
      RUN_TIMEOUT_MS,
    );
  },
);
