import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { processesUnder } from '../../functions/lib/local/command.ts';
import { LOCAL_MODE_TOOLS } from '../../functions/lib/local/deps.ts';
import { LocalImageStore } from '../../functions/lib/local/image-store.ts';
import { listNamespaces } from '../../functions/lib/local/netns.ts';
import type { LocalPaths } from '../../functions/lib/local/paths.ts';
import {
  type LocalRunStart,
  runLocalPipeline,
} from '../../functions/lib/local/pipeline.ts';
import { mountsUnder } from '../../functions/lib/local/rootfs.ts';
import { runWorkDir } from '../../functions/lib/local/run-context.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  EXAMPLE_PROFILE,
  expectNothingLeft,
  RUN_TIMEOUT_MS,
  readRegistry,
  removeHome,
  SHARED_CACHE,
  temporaryHome,
} from './support.ts';

// The Task logs at the level of a real run (the suite's default is SILENT).
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/** The Task functions that logged their end in the run's pipeline.log. */
async function finishedTasks(logFile: string): Promise<unknown[]> {
  const text = await readFile(logFile, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { message?: string; task?: string })
    .filter((line) => line.message === 'task finished')
    .map((line) => line.task);
}

describeWithSystem(
  'runLocalPipeline interrupted',
  { root: true, tools: LOCAL_MODE_TOOLS },
  () => {
    let paths: LocalPaths;
    beforeAll(async () => {
      paths = await temporaryHome();
    });
    afterAll(async () => {
      await removeHome(paths);
    });

    it(
      'stops the build and leaves nothing behind when aborted mid-build',
      async () => {
        // Prepare: abort once the chroot build is installing packages,
        // with its /proc mount and apt running inside it.
        const controller = new AbortController();
        let seen: { mounts: string[]; processes: number[] } | undefined;
        let workDir = '';
        const onStart = (run: LocalRunStart) => {
          workDir = runWorkDir(paths, run.runId);
        };
        const progress = (line: string) => {
          if (line.includes('step 10-packages.sh') && seen === undefined) {
            seen = { mounts: [], processes: [] };
            setTimeout(async () => {
              seen = {
                mounts: await mountsUnder(workDir),
                processes: await processesUnder(workDir),
              };
              controller.abort(new Error('interrupted by the test'));
            }, 3000);
          }
        };

        // Act
        const result = await runLocalPipeline({
          profileFile: EXAMPLE_PROFILE,
          paths,
          cacheDir: SHARED_CACHE,
          signal: controller.signal,
          onStart,
          progress,
        });

        // Assess
        expect(result.status).toBe('ABORTED');
        expect(seen?.mounts.length).toBeGreaterThan(0);
        expect(seen?.processes.length).toBeGreaterThan(0);
        expect(result.path).not.toContain('ResolveImage');
        const images = await new LocalImageStore(paths).listImages();
        expect(images.map((image) => image.ownerId)).toEqual(['debian']);
        expect(await new LocalImageStore(paths).listSnapshots()).toEqual([]);
        expect(await readRegistry(paths)).toBeUndefined();
        await expectNothingLeft(paths, result);
        // The processes the build ran in its chroot are gone too.
        expect(await processesUnder(workDir)).toEqual([]);
        // The Tasks that ran before the interruption are in the Task log.
        expect(await finishedTasks(result.logFile)).toEqual(
          expect.arrayContaining(['Prepare', 'StartBuild']),
        );
      },
      RUN_TIMEOUT_MS,
    );

    it(
      'terminates the test host and discards the image when aborted during the smoke test',
      async () => {
        // Prepare: abort as the smoke test starts, the test host up.
        const controller = new AbortController();
        let seen: { namespaces: string[]; processes: number[] } | undefined;
        let start: LocalRunStart | undefined;

        // Act
        const result = await runLocalPipeline({
          profileFile: EXAMPLE_PROFILE,
          paths,
          cacheDir: SHARED_CACHE,
          signal: controller.signal,
          onStart: (run) => {
            start = run;
          },
          onEvent: (event) => {
            if (event.type === 'StateEntered' && event.state === 'SmokeTest') {
              void (async () => {
                const workDir = runWorkDir(paths, start?.runId ?? '');
                seen = {
                  namespaces: await listNamespaces(),
                  processes: await processesUnder(workDir),
                };
                controller.abort(new Error('interrupted by the test'));
              })();
            }
          },
        });

        // Assess
        expect(result.status).toBe('ABORTED');
        expect(seen?.namespaces).toContain(start?.network.namespace);
        expect(seen?.processes.length).toBeGreaterThan(1);
        expect(result.path).not.toContain('Publish');
        expect(result.imageId).toMatch(/^img-/);
        const store = new LocalImageStore(paths);
        expect(await store.describeImage(result.imageId as string)).toBe(
          undefined,
        );
        expect(await store.listSnapshots()).toEqual([]);
        expect(await readRegistry(paths)).toBeUndefined();
        for (const pid of seen?.processes ?? []) {
          expect(result.hosts[0]?.pids).toContain(pid);
        }
        await expectNothingLeft(paths, result);
        expect(await finishedTasks(result.logFile)).toEqual(
          expect.arrayContaining(['Prepare', 'ResolveImage', 'CheckImage']),
        );
      },
      RUN_TIMEOUT_MS,
    );
  },
);
