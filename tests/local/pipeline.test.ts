import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import {
  LOCAL_REGION,
  LocalAttestationStore,
  localKeyFiles,
  smokeReportOf,
  verifyImage,
} from '../../functions/lib/attest/index.ts';
import {
  TAG_ATTESTATION,
  TAG_RUN_ID,
  TAG_VALIDATED,
} from '../../functions/lib/constants.ts';
import { TAG_IMAGE_DIGEST } from '../../functions/lib/local/build-runner.ts';
import { LOCAL_MODE_TOOLS } from '../../functions/lib/local/deps.ts';
import {
  LocalImageStore,
  SNAPSHOT_FILE,
} from '../../functions/lib/local/image-store.ts';
import type { LocalPaths } from '../../functions/lib/local/paths.ts';
import { runLocalPipeline } from '../../functions/lib/local/pipeline.ts';
import {
  loadDefinition,
  taskFunctions,
} from '../../functions/lib/local/state-machine.ts';
import type { ProbeReport } from '../../functions/lib/probe/index.ts';
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

const PROFILE_NAME = 'genesys-byoc-example';

// The Task logs at the level of a real run (the suite's default is SILENT).
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/** The Task functions the run called, in order, from its path. */
function tasksOf(path: readonly string[]): string[] {
  const functions = taskFunctions(loadDefinition());
  return path.flatMap((state) => {
    const fn = functions[state];
    return fn === undefined ? [] : [fn];
  });
}

/** The `task finished` lines of a run's pipeline.log. */
async function finishedTasks(logFile: string) {
  const text = await readFile(logFile, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.message === 'task finished');
}

describeWithSystem(
  'runLocalPipeline',
  { root: true, tools: LOCAL_MODE_TOOLS },
  () => {
    let paths: LocalPaths;
    let store: LocalImageStore;
    beforeAll(async () => {
      paths = await temporaryHome();
      store = new LocalImageStore(paths);
    });
    afterAll(async () => {
      await removeHome(paths);
    });

    it(
      'publishes a signed, verified image when the profile is healthy',
      async () => {
        // Act
        const result = await runLocalPipeline({
          profileFile: EXAMPLE_PROFILE,
          paths,
          cacheDir: SHARED_CACHE,
        });

        // Assess
        expect(result.status, result.cause).toBe('SUCCEEDED');
        const imageId = result.imageId as string;
        const registry = (await readRegistry(paths)) as {
          profiles: Record<string, { current: string; history: unknown[] }>;
        };
        expect(registry.profiles[PROFILE_NAME]?.current).toBe(imageId);
        expect(registry.profiles[PROFILE_NAME]?.history).toHaveLength(1);

        const image = await store.describeImage(imageId);
        expect(image?.state).toBe('available');
        expect(image?.tags[TAG_VALIDATED]).toBe('true');
        expect(image?.tags[TAG_RUN_ID]).toBe(result.runId);
        expect(image?.tags[TAG_ATTESTATION]).toMatch(/^file:\/\//);

        // The attestation verifies with the local public key, read here.
        const verification = await verifyImage({
          imageId,
          images: store,
          attestations: new LocalAttestationStore(paths),
          publicKeyPem: await readFile(localKeyFiles(paths).publicKey, 'utf8'),
          region: LOCAL_REGION,
        });
        expect(verification.reasons).toEqual([]);
        expect(verification.ok).toBe(true);
        const signedReport = smokeReportOf(
          verification.statement as NonNullable<typeof verification.statement>,
        ) as ProbeReport;
        expect(signedReport.ok).toBe(true);
        expect(signedReport.checks.map((check) => check.name)).toEqual(
          expect.arrayContaining([
            'sip-options-udp',
            'sip-options-tcp',
            'sip-options-tls',
            'tls-chain',
            'tls-expiry',
          ]),
        );
        expect(signedReport.address).toBe(result.network?.guestAddress);

        // The snapshot is the packed root filesystem its digest names.
        const snapshotId = image?.blockDevices[0]?.snapshotId as string;
        const file = join(store.snapshotDir(snapshotId), SNAPSHOT_FILE);
        expect(image?.tags[TAG_IMAGE_DIGEST]).toBe(
          `sha256:${await sha256File(file)}`,
        );
        const manifest = JSON.parse(
          await readFile(
            join(result.recordDir, 'build-1', 'packer-manifest.json'),
            'utf8',
          ),
        );
        expect(manifest.builds[0].artifact_id).toBe(`local:${imageId}`);
        expect(manifest.builds[0].custom_data.run_id).toBe(result.runId);

        expect(result.hosts).toHaveLength(1);
        expect(result.hosts[0]?.pids.length).toBeGreaterThan(1);
        await expectNothingLeft(paths, result);

        // One INFO line per Task, with the run id and a small result.
        const finished = await finishedTasks(result.logFile);
        expect(finished.map((line) => line.task)).toEqual(tasksOf(result.path));
        for (const line of finished) {
          expect(line).toMatchObject({ level: 'INFO', runId: result.runId });
          expect(line.durationMs).toEqual(expect.any(Number));
        }
        const published = finished.find((line) => line.task === 'Publish');
        expect(JSON.stringify(published?.result)).toContain(PROFILE_NAME);

        // The signature covers the snapshot's bytes: the run re-hashed
        // them, and one byte more fails verify --local, naming the file.
        expect(verification.statement?.subject[0]?.annotations).toMatchObject({
          contentDigest: await sha256File(file),
        });
        expect(result.verification?.contents?.hashed).toEqual({
          sha256: result.digest,
          files: [file],
        });
        expect(
          verification.statement?.predicate.buildDefinition.internalParameters
            ?.sourceDirty,
        ).toBe(result.source.dirty);
        await appendFile(file, Buffer.from([0]));
        const code = await verifyLocally(paths, imageId);
        expect(code.exit).toBe(1);
        expect(code.errors).toContain(file);
        expect(code.errors).toMatch(/not the signed sha256/);
      },
      RUN_TIMEOUT_MS,
    );

    it(
      'fails at the smoke test and discards the image when the certificate has expired',
      async () => {
        // Prepare
        const registryBefore = await readRegistry(paths);
        const imagesBefore = (await store.listImages()).map((i) => i.imageId);

        // Act
        const result = await runLocalPipeline({
          profileFile: EXAMPLE_PROFILE,
          paths,
          cacheDir: SHARED_CACHE,
          certificateDays: -1,
        });

        // Assess
        expect(result.status).toBe('FAILED');
        expect(result.error).toBe('SmokeTestFailedError');
        expect(result.cause).toMatch(/tls-expiry/);
        const afterSmoke = result.path.slice(result.path.indexOf('SmokeTest'));
        expect(afterSmoke).toEqual([
          'SmokeTest',
          'TerminateAfterFailure',
          'DiscardImage',
          'SweepBuildLeftovers',
          'NotifyFailure',
          'Failed',
        ]);
        const failed = result.smoke?.checks.filter((check) => !check.ok);
        expect(failed?.map((check) => check.name)).toContain('tls-expiry');

        // Nothing published, the image and its snapshot gone.
        expect(await readRegistry(paths)).toEqual(registryBefore);
        const imageId = result.imageId as string;
        expect(imageId).toMatch(/^img-/);
        expect(await store.describeImage(imageId)).toBeUndefined();
        expect((await store.listImages()).map((i) => i.imageId)).toEqual(
          imagesBefore,
        );
        const snapshots = await store.listSnapshots();
        expect(
          snapshots.filter((s) => s.tags[TAG_RUN_ID] === result.runId),
        ).toEqual([]);
        expect(
          existsSync(join(paths.attestations, `${imageId}.intoto.json`)),
        ).toBe(false);

        expect(result.hosts[0]?.pids.length).toBeGreaterThan(1);
        await expectNothingLeft(paths, result);

        const finished = (await finishedTasks(result.logFile)).map(
          (line) => line.task,
        );
        expect(finished).toEqual(
          expect.arrayContaining(['Prepare', 'DiscardImage', 'Notify']),
        );
        expect(finished).not.toContain('SmokeTest');
      },
      RUN_TIMEOUT_MS,
    );
  },
);

/** `sbc-ami verify --local IMAGE` against a home: exit code and stderr. */
async function verifyLocally(paths: LocalPaths, imageId: string) {
  const saved = process.env.SBC_AMI_HOME;
  process.env.SBC_AMI_HOME = paths.home;
  const errors: string[] = [];
  const err = vi.spyOn(console, 'error').mockImplementation((line) => {
    errors.push(String(line));
  });
  const out = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const exit = await main(['node', 'sbc-ami', 'verify', '--local', imageId]);
    return { exit, errors: errors.join('\n') };
  } finally {
    err.mockRestore();
    out.mockRestore();
    if (saved === undefined) {
      delete process.env.SBC_AMI_HOME;
    } else {
      process.env.SBC_AMI_HOME = saved;
    }
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
