/**
 * Local mode end to end: the pipeline's own state machine definition run
 * on this machine, each Task bound to the same handler as on AWS with the
 * local adapters, and a cleanup that leaves nothing behind whether the run
 * succeeds, fails or is interrupted.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { taskHandlers } from '../../tasks.ts';
import {
  LOCAL_REGION,
  LocalAttestationStore,
  type VerifyResult,
  verifyImage,
} from '../attest/index.ts';
import { ConfigurationError, describeError } from '../errors.ts';
import type { TaskHandler } from '../handler.ts';
import { type ExecutionInput, runIdentity } from '../pipeline/run-id.ts';
import type { PipelineSettings } from '../pipeline/settings.ts';
import type { ImageRecord, Notification } from '../ports.ts';
import type { ProbeReport } from '../probe/index.ts';
import { registerBaseImage } from './base-image.ts';
import { command } from './command.ts';
import {
  createLocalAdapters,
  type LocalAdapters,
  localSettings,
  REPO_ROOT,
} from './deps.ts';
import { LocalImageStore, SNAPSHOT_FILE } from './image-store.ts';
import { type HostNetwork, RESERVATIONS_DIR, reserveNetwork } from './netns.ts';
import { type LocalPaths, localPaths } from './paths.ts';
import { runRecordDir, runWorkDir } from './run-context.ts';
import { type LocalEvent, runLocalStateMachine } from './state-machine.ts';
import { claimWorkDir, LocalLeftoverSweeper } from './sweeper.ts';
import { routeTaskLogs } from './task-logs.ts';
import type { TestHostRecord } from './test-host.ts';
import { discardUnpublished } from './unpublished.ts';

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
  /** The checkout the image is built from. */
  readonly source: SourceState;
  /**
   * What the run has on the machine right now that its cleanup would
   * remove, one line each: what quitting at once leaves for the next
   * run's sweep. Synchronous, so a signal handler can call it.
   */
  readonly leftovers: () => string[];
}

/** The pipeline's checkout, as the provenance records it. */
export interface SourceState {
  /** `git rev-parse HEAD`: a full commit id. */
  readonly revision: string;
  /** True when the working tree differs from that commit. */
  readonly dirty: boolean;
  /** `git status --porcelain` lines: changed and untracked paths. */
  readonly changes: string[];
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
  readonly imageFile?: string;
  /** The last smoke-test report, also when it failed the run. */
  readonly smoke?: ProbeReport;
  /**
   * The image verified as `sbc-ami verify --local` does: signature, subject,
   * and the snapshot file hashed again against the signed content digest.
   */
  readonly verification?: VerifyResult;
  /** The checkout the image was built from. */
  readonly source: SourceState;
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
  const source = await readSourceState();

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
        sourceRevision: source.revision,
        sourceDirty: source.dirty,
        certificateDays: options.certificateDays ?? 90,
        settings: options.settings?.(localSettings()) ?? localSettings(),
        notify: options.notify,
        reservationsDir: options.reservationsDir,
      },
    );
    restoreLogs = await routeTaskLogs(logFile);
    const bound = adapters;
    const hostNetwork = network;
    options.onStart?.({
      runId,
      executionName,
      recordDir,
      logFile,
      network,
      baseImageId: base.imageId,
      source,
      leftovers: () =>
        presentLeftovers(bound, hostNetwork, {
          workDir,
          registryFile: paths.registry,
          reservationsDir: options.reservationsDir ?? RESERVATIONS_DIR,
        }),
    });

    const inflight = new Set<Promise<unknown>>();
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
    source,
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
      const discarded = await discardUnpublished(
        adapters.images,
        adapters.publisher,
        runId,
      );
      leftBehind.push(...discarded.leftBehind);
    }
  }
  const swept = await sweeper.sweep(runId);
  leftBehind.push(...swept.leftBehind);
  return leftBehind;
}

/**
 * What a run has on the machine now, read without waiting: its work
 * folder (mounts and chrooted processes in it), its namespace and veth,
 * its images not in the registry, its /30 reservation.
 */
function presentLeftovers(
  adapters: LocalAdapters,
  network: HostNetwork,
  where: { workDir: string; registryFile: string; reservationsDir: string },
): string[] {
  const lines: string[] = [];
  if (existsSync(where.workDir)) {
    lines.push(
      `work folder ${where.workDir} (with any mount and process in it)`,
    );
  }
  if (existsSync(join('/run/netns', network.namespace))) {
    lines.push(
      `network namespace ${network.namespace}, veth ${network.hostLink}`,
    );
  }
  const published = registryImageIds(where.registryFile);
  for (const build of adapters.builds.reports()) {
    if (build.imageId !== undefined && !published.has(build.imageId)) {
      lines.push(
        `image ${build.imageId} and snapshot ${build.snapshotId} ` +
          '(never published)',
      );
    } else if (build.imageId === undefined && build.snapshotId !== undefined) {
      lines.push(`snapshot ${build.snapshotId} (no image registered yet)`);
    }
  }
  if (existsSync(join(where.reservationsDir, `${network.block}.json`))) {
    lines.push(`reservation of ${network.hostAddress}/30`);
  }
  return lines;
}

/** The registry's image ids, read at once; none when it cannot be read. */
function registryImageIds(file: string): Set<string> {
  try {
    const registry = JSON.parse(readFileSync(file, 'utf8')) as {
      profiles?: Record<string, { history?: Array<{ imageId?: string }> }>;
    };
    return new Set(
      Object.values(registry.profiles ?? {}).flatMap((profile) =>
        (profile.history ?? []).map((entry) => entry.imageId ?? ''),
      ),
    );
  } catch {
    return new Set();
  }
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
  const images = adapters.images;
  const verification = await verifyImage({
    imageId,
    images,
    attestations: new LocalAttestationStore(paths),
    publicKeyPem: await adapters.signer.publicKeyPem(),
    region: LOCAL_REGION,
    contents: (record) => images.hashContents(record),
  });
  const profileName = output.run?.profileName ?? '';
  return {
    ...base,
    image,
    imageFile,
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

/**
 * The checkout's commit and whether its working tree differs from it
 * (changed, staged or untracked files): a dirty tree builds an image that
 * no commit describes, which the provenance then says.
 */
export async function readSourceState(root = REPO_ROOT): Promise<SourceState> {
  const revision = await readSourceRevision(root);
  let status: string;
  try {
    status = await command('git', [
      '-C',
      root,
      'status',
      '--porcelain=v1',
      '--untracked-files=normal',
    ]);
  } catch (error) {
    throw new ConfigurationError(
      `cannot tell whether the checkout ${root} has uncommitted changes ` +
        `(git status): ${describeError(error)}`,
      { cause: error },
    );
  }
  const changes = status.split('\n').filter((line) => line.trim() !== '');
  return { revision, dirty: changes.length > 0, changes };
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
