/**
 * Local mode end to end: the pipeline's own state machine definition run
 * on this machine, each Task bound to the same handler as on AWS with the
 * local adapters, and a cleanup that leaves nothing behind whether the run
 * succeeds, fails or is interrupted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { taskHandlers } from '../../tasks.ts';
import {
  LOCAL_REGION,
  LocalAttestationStore,
  type VerifyResult,
  verifyImage,
} from '../attest/index.ts';
import { TAG_PROFILE } from '../constants.ts';
import { ConfigurationError, describeError } from '../errors.ts';
import type { TaskHandler } from '../handler.ts';
import { type ExecutionInput, runIdentity } from '../pipeline/run-id.ts';
import type { PipelineSettings } from '../pipeline/settings.ts';
import type { ImageRecord, Notification } from '../ports.ts';
import type { ProbeReport } from '../probe/index.ts';
import { discardImage } from '../retention/index.ts';
import { registerBaseImage } from './base-image.ts';
import { TAG_IMAGE_DIGEST } from './build-runner.ts';
import { command } from './command.ts';
import {
  createLocalAdapters,
  type LocalAdapters,
  localSettings,
  REPO_ROOT,
} from './deps.ts';
import { LocalImageStore, SNAPSHOT_FILE } from './image-store.ts';
import { type HostNetwork, reserveNetwork } from './netns.ts';
import { type LocalPaths, localPaths } from './paths.ts';
import { runRecordDir, runWorkDir } from './run-context.ts';
import { type LocalEvent, runLocalStateMachine } from './state-machine.ts';
import { claimWorkDir, LocalLeftoverSweeper } from './sweeper.ts';
import { routeTaskLogs } from './task-logs.ts';
import type { TestHostRecord } from './test-host.ts';

export interface LocalPipelineOptions {
  readonly profileFile: string;
  readonly paths?: LocalPaths;
  /** The debootstrap base and package cache; `paths.cache` by default. */
  readonly cacheDir?: string;
  /** Days the test host's certificate is valid (90); zero or less: expired. */
  readonly certificateDays?: number;
  /** Aborting interrupts the run; the cleanup still runs to its end. */
  readonly signal?: AbortSignal;
  /** Makes the run's identity; a new one per call by default. */
  readonly nonce?: string;
  /** Each state entered or left, with the milliseconds since the start. */
  readonly onEvent?: (event: LocalEvent, elapsedMs: number) => void;
  /** Called once the run has its identity, before the execution starts. */
  readonly onStart?: (run: LocalRunStart) => void;
  /** Lines of what the adapters are doing (build steps, test host). */
  readonly progress?: (line: string) => void;
  /** The notification, as the Notify step sends it. */
  readonly notify?: (message: string) => void;
  readonly settings?: (defaults: PipelineSettings) => PipelineSettings;
  /** How long Wait states pause, in ms. */
  readonly waitMs?: number;
  readonly reservationsDir?: string;
}

export interface LocalRunStart {
  readonly runId: string;
  readonly executionName: string;
  readonly recordDir: string;
  readonly logFile: string;
  readonly network: HostNetwork;
  readonly baseImageId: string;
}

/** Time spent in one state of the definition, over all its entries. */
export interface StateTiming {
  readonly state: string;
  readonly ms: number;
  readonly entries: number;
}

export interface LocalPipelineResult {
  readonly status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  readonly runId: string;
  readonly executionName: string;
  /** The execution's error name and readable cause, when it failed. */
  readonly error?: string;
  readonly cause?: string;
  /** The states entered, in order. */
  readonly path: string[];
  readonly baseImageId: string;
  /** The run's image; after a failure it is discarded again. */
  readonly imageId?: string;
  readonly image?: ImageRecord;
  /** SHA-256 (hex) of the packed root filesystem, as the build recorded it. */
  readonly digest?: string;
  /** The snapshot file hashed again now matches `digest`. */
  readonly digestMatches?: boolean;
  readonly imageFile?: string;
  /** The last smoke-test report, also when it failed the run. */
  readonly smoke?: ProbeReport;
  readonly verification?: VerifyResult;
  readonly published?: { location: string; history: string[] };
  readonly attestation?: string;
  readonly publicKeyFile?: string;
  readonly network?: HostNetwork;
  /** The run's logs and records (kept). */
  readonly recordDir: string;
  readonly logFile: string;
  readonly timings: {
    readonly totalMs: number;
    /** Caching (or finding) the debootstrap base, before the execution. */
    readonly baseMs: number;
    readonly states: StateTiming[];
    /** Steps of the root filesystem build. */
    readonly rootfs: Record<string, number>;
    /** The cleanup after the execution. */
    readonly cleanupMs: number;
  };
  readonly hosts: TestHostRecord[];
  readonly notifications: Notification[];
  /** What could not be removed, for a person to remove by hand. */
  readonly leftBehind: string[];
}

/** Runs the pipeline on this machine. Throws only before anything ran. */
export async function runLocalPipeline(
  options: LocalPipelineOptions,
): Promise<LocalPipelineResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const paths = options.paths ?? localPaths();
  const cacheDir = resolve(options.cacheDir ?? paths.cache);
  const progress = options.progress ?? (() => {});
  const signal = options.signal;
  const sourceRevision = await readSourceRevision();

  const sweeper = new LocalLeftoverSweeper(paths, options.reservationsDir);
  const stale = await sweeper.sweepStale();
  if (stale.runs.length > 0) {
    progress(
      `swept ${stale.runs.length} interrupted run(s): ` +
        `${stale.removed.length} leftovers removed`,
    );
  }

  const store = new LocalImageStore(paths);
  const base = await registerBaseImage({
    store,
    cacheDir,
    log: (line) => {
      if (/^base: /.test(line)) {
        progress(line);
      }
    },
    signal,
  });
  const baseMs = elapsed();

  const input: ExecutionInput = {
    trigger: {
      source: 'local',
      nonce: options.nonce ?? randomBytes(8).toString('hex'),
    },
    profile: { key: resolve(options.profileFile) },
  };
  const { runId, executionName } = runIdentity(input);
  const workDir = runWorkDir(paths, runId);
  const recordDir = runRecordDir(paths, runId);
  const logFile = join(recordDir, 'pipeline.log');

  const clock = new StateClock(elapsed);
  let adapters: LocalAdapters | undefined;
  let network: HostNetwork | undefined;
  let restoreLogs: (() => Promise<void>) | undefined;
  let execution: Awaited<ReturnType<typeof runLocalStateMachine>> | undefined;
  const leftBehind: string[] = [];
  let cleanupMs = 0;
  try {
    await mkdir(workDir, { recursive: true });
    await mkdir(recordDir, { recursive: true });
    await claimWorkDir(workDir);
    network = await reserveNetwork(runId, { dir: options.reservationsDir });
    adapters = await createLocalAdapters(
      {
        paths,
        runId,
        workDir,
        recordDir,
        cacheDir,
        network,
        signal,
        progress,
      },
      {
        sourceRevision,
        certificateDays: options.certificateDays ?? 90,
        settings: options.settings?.(localSettings()) ?? localSettings(),
        notify: options.notify,
        reservationsDir: options.reservationsDir,
      },
    );
    restoreLogs = await routeTaskLogs(logFile);
    options.onStart?.({
      runId,
      executionName,
      recordDir,
      logFile,
      network,
      baseImageId: base.imageId,
    });

    const inflight = new Set<Promise<unknown>>();
    const bound = adapters;
    execution = await runLocalStateMachine({
      handlers: tracked(
        taskHandlers(() => bound.deps),
        inflight,
      ),
      input,
      executionName,
      waitMs: options.waitMs ?? 200,
      signal,
      onEvent: (event) => {
        clock.record(event);
        options.onEvent?.(event, elapsed());
      },
    });
    // An interrupted execution leaves its current Task running: its work
    // must end before the cleanup can know what it made.
    await Promise.allSettled([...inflight]);
  } finally {
    const cleanupStarted = elapsed();
    leftBehind.push(...(await finish(runId, adapters, sweeper, execution)));
    await restoreLogs?.();
    cleanupMs = elapsed() - cleanupStarted;
  }

  if (execution === undefined || adapters === undefined) {
    // The try block either set both or threw past this point.
    throw new Error('the local execution did not run');
  }
  const summary = await summarize(execution, adapters, paths);
  return {
    status: execution.status,
    runId,
    executionName,
    ...(execution.status === 'FAILED'
      ? { error: execution.error, cause: execution.cause }
      : {}),
    path: execution.path,
    baseImageId: base.imageId,
    ...summary,
    network,
    recordDir,
    logFile,
    timings: {
      totalMs: elapsed(),
      baseMs,
      states: clock.timings(),
      rootfs: Object.assign(
        {},
        ...adapters.builds.reports().map((report) => report.timings),
      ),
      cleanupMs,
    },
    hosts: adapters.hosts.records(),
    notifications: adapters.notifier.sent(),
    leftBehind,
  };
}

/**
 * After every run: stops builds, terminates test hosts, discards an image
 * that did not make it into the registry, and sweeps whatever the run
 * left. The execution's failure path has done most of it already; doing it
 * again is harmless, and it is the only cleanup an interrupted run gets.
 */
async function finish(
  runId: string,
  adapters: LocalAdapters | undefined,
  sweeper: LocalLeftoverSweeper,
  execution: { status: string } | undefined,
): Promise<string[]> {
  const leftBehind: string[] = [];
  if (adapters !== undefined) {
    await adapters.builds.stopAll();
    leftBehind.push(...(await adapters.hosts.terminateAll()));
    if (execution?.status !== 'SUCCEEDED') {
      leftBehind.push(...(await discardUnpublished(adapters, runId)));
    }
  }
  const swept = await sweeper.sweep(runId);
  leftBehind.push(...swept.leftBehind);
  return leftBehind;
}

async function discardUnpublished(
  adapters: LocalAdapters,
  runId: string,
): Promise<string[]> {
  const leftBehind: string[] = [];
  for (const build of adapters.builds.reports()) {
    if (build.imageId === undefined) {
      continue;
    }
    const image = await adapters.images.describeImage(build.imageId);
    const profile = image?.tags[TAG_PROFILE];
    const history =
      profile === undefined ? [] : await adapters.publisher.history(profile);
    if (history[0] === build.imageId) {
      continue;
    }
    const result = await discardImage(adapters.images, build.imageId, {
      snapshotIds: build.snapshotId === undefined ? [] : [build.snapshotId],
      runId,
    });
    leftBehind.push(
      ...result.leftBehind,
      ...result.errors.map((error) => `${error.id}: ${error.reason}`),
    );
  }
  return leftBehind;
}

async function summarize(
  execution: { status: string; output?: unknown } | undefined,
  adapters: LocalAdapters | undefined,
  paths: LocalPaths,
): Promise<Partial<LocalPipelineResult>> {
  if (execution === undefined || adapters === undefined) {
    return {};
  }
  const build = adapters.builds.reports().at(-1);
  const smoke = adapters.probeReports.at(-1);
  const imageId = build?.imageId;
  const base = { imageId, digest: build?.digest, smoke };
  if (execution.status !== 'SUCCEEDED' || imageId === undefined) {
    return base;
  }

  const output = execution.output as {
    attestation?: { location?: string };
    published?: { location?: string };
    run?: { profileName?: string };
  };
  const image = await adapters.images.describeImage(imageId);
  const snapshotId = image?.blockDevices[0]?.snapshotId;
  const imageFile =
    snapshotId === undefined
      ? undefined
      : join(adapters.images.snapshotDir(snapshotId), SNAPSHOT_FILE);
  const recorded = image?.tags[TAG_IMAGE_DIGEST]?.replace(/^sha256:/, '');
  const digestMatches =
    imageFile !== undefined && recorded !== undefined
      ? (await sha256File(imageFile)) === recorded
      : false;
  const verification = await verifyImage({
    imageId,
    images: adapters.images,
    attestations: new LocalAttestationStore(paths),
    publicKeyPem: await adapters.signer.publicKeyPem(),
    region: LOCAL_REGION,
  });
  const profileName = output.run?.profileName ?? '';
  return {
    ...base,
    image,
    imageFile,
    digestMatches,
    verification,
    attestation: output.attestation?.location,
    published: {
      location: output.published?.location ?? '',
      history: await adapters.publisher.history(profileName),
    },
    publicKeyFile: adapters.signer.publicKeyFile,
  };
}

/** Handlers whose running calls are kept in `inflight` until they settle. */
function tracked(
  handlers: Record<string, TaskHandler<unknown>>,
  inflight: Set<Promise<unknown>>,
): Record<string, TaskHandler<unknown>> {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (event: unknown, context: Parameters<TaskHandler<unknown>>[1]) => {
        const call = handler(event, context);
        inflight.add(call);
        call.then(
          () => inflight.delete(call),
          () => inflight.delete(call),
        );
        return call;
      },
    ]),
  );
}

/** Time per state, from the execution's StateEntered/StateExited events. */
class StateClock {
  readonly #elapsed: () => number;
  readonly #entered = new Map<string, number>();
  readonly #totals = new Map<string, { ms: number; entries: number }>();

  constructor(elapsed: () => number) {
    this.#elapsed = elapsed;
  }

  record(event: LocalEvent): void {
    if (event.state === undefined) {
      return;
    }
    const now = this.#elapsed();
    if (event.type === 'StateEntered') {
      this.#entered.set(event.state, now);
      const total = this.#totals.get(event.state) ?? { ms: 0, entries: 0 };
      this.#totals.set(event.state, { ...total, entries: total.entries + 1 });
      return;
    }
    const since = this.#entered.get(event.state);
    if (since !== undefined && /^State(Exited|Failed)$/.test(event.type)) {
      const total = this.#totals.get(event.state) ?? { ms: 0, entries: 0 };
      this.#totals.set(event.state, {
        ms: total.ms + (now - since),
        entries: total.entries,
      });
      this.#entered.delete(event.state);
    }
  }

  timings(): StateTiming[] {
    return [...this.#totals.entries()].map(([state, total]) => ({
      state,
      ...total,
    }));
  }
}

/** The checkout's commit, which every local image is tagged with. */
export async function readSourceRevision(root = REPO_ROOT): Promise<string> {
  let revision: string;
  try {
    revision = (await command('git', ['-C', root, 'rev-parse', 'HEAD'])).trim();
  } catch (error) {
    throw new ConfigurationError(
      `local mode tags each image with the pipeline's source revision (a ` +
        `full git commit id), but ${root} is not a git checkout with a ` +
        `commit: ${describeError(error)}`,
      { cause: error },
    );
  }
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    throw new ConfigurationError(
      `git rev-parse HEAD in ${root} gave ${JSON.stringify(revision)}, ` +
        'not a full commit id',
    );
  }
  return revision;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
