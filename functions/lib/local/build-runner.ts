/**
 * The local build: CodeBuild and Packer's part, on this machine. A build
 * renders the profile's config tree, provisions a Debian 12 root
 * filesystem in a chroot with the same scripts as the EC2 build, registers
 * the packed file as an image with one snapshot, and writes a manifest of
 * the shape Packer's manifest post-processor writes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MANIFEST_FILE, parseManifest } from '../aws/build-runner.ts';
import {
  MANAGED_BY_VALUE,
  TAG_BASE_IMAGE,
  TAG_IMAGE_DIGEST,
  TAG_MANAGED_BY,
  TAG_PROFILE,
  TAG_PROFILE_DIGEST,
  TAG_RUN_ID,
  TAG_SOURCE_DIRTY,
  TAG_SOURCE_REVISION,
  TAG_TEMPLATE_DIGEST,
} from '../constants.ts';
import {
  BuildFailedError,
  describeError,
  InvalidInputError,
} from '../errors.ts';
import { MANIFEST_RUN_ID } from '../pipeline/image.ts';
import type {
  BuildRunner,
  BuildState,
  ManifestEntry,
  StartBuildRequest,
  Tags,
} from '../ports.ts';
import {
  parseProfileBytes,
  profileDigest,
  renderProfile,
  writeRenderedTree,
} from '../profile/index.ts';
import { localArchitecture, TAG_BASE_ARCHIVE } from './base-image.ts';
import { within } from './command.ts';
import {
  LOCAL_OWNER_ID,
  type LocalImageStore,
  SNAPSHOT_FILE,
} from './image-store.ts';
import { writeJsonFile } from './json-file.ts';
import {
  buildRootfs,
  cleanupRootfs,
  debootstrapBase,
  templateDigest,
} from './rootfs.ts';
import type { LocalRun } from './run-context.ts';

/** SHA-256 of the packed root filesystem, on the image and its snapshot. */
export { TAG_IMAGE_DIGEST };

/** The builder type named in the manifest, in place of `amazon-ebs`. */
export const LOCAL_BUILDER_TYPE = 'sbc-ami-chroot';

/** CodeBuild's phases, as far as the local build has them. */
type Phase = 'SUBMITTED' | 'PRE_BUILD' | 'BUILD' | 'POST_BUILD' | 'COMPLETED';

interface LocalBuild {
  readonly buildId: string;
  readonly attempt: number;
  /** Scratch: rendered tree and root filesystem, removed when it ends. */
  readonly dir: string;
  /** Kept: the manifest, the build's artifacts location. */
  readonly artifactsDir: string;
  readonly controller: AbortController;
  readonly startedAt: string;
  status: 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'STOPPED';
  phase: Phase;
  endedAt?: string;
  failure?: string;
  imageId?: string;
  snapshotId?: string;
  digest?: string;
  timings: Record<string, number>;
  /** Settles when the build has ended and cleaned up after itself. */
  done: Promise<void>;
  /** Wakes a waiting `get` at each status or phase change. */
  wake: () => void;
  changed: Promise<void>;
}

export interface LocalBuildRunnerOptions {
  readonly store: LocalImageStore;
  /** The pipeline's commit: a full git commit id. */
  readonly sourceRevision: string;
  /**
   * The checkout has changes that commit does not hold: the image is then
   * tagged so, and its provenance says `sourceDirty: true`.
   */
  readonly sourceDirty?: boolean;
  /**
   * How long `get` waits for the build to change before it answers
   * IN_PROGRESS: the state machine's wait loop stays short in local mode
   * while a build takes minutes.
   */
  readonly pollMs?: number;
}

/** Facts of a finished build, for the summary and the bench. */
export interface LocalBuildReport {
  readonly buildId: string;
  readonly status: string;
  readonly phase: string;
  readonly imageId?: string;
  readonly snapshotId?: string;
  readonly digest?: string;
  /** Milliseconds per step of the root filesystem build. */
  readonly timings: Record<string, number>;
  readonly failure?: string;
}

export class LocalBuildRunner implements BuildRunner {
  readonly #run: LocalRun;
  readonly #options: LocalBuildRunnerOptions;
  readonly #builds = new Map<string, LocalBuild>();

  constructor(run: LocalRun, options: LocalBuildRunnerOptions) {
    this.#run = run;
    this.#options = options;
  }

  async start(request: StartBuildRequest): Promise<{ buildId: string }> {
    if (request.runId !== this.#run.runId) {
      throw new InvalidInputError(
        `runId: this local build runner serves run ${this.#run.runId}, ` +
          `not ${request.runId}`,
      );
    }
    this.#run.signal?.throwIfAborted();
    // The run id and attempt are the idempotency token, as with CodeBuild:
    // a retried start returns the build already running.
    const buildId = `local-build:${request.runId}:${request.attempt}`;
    if (this.#builds.has(buildId)) {
      return { buildId };
    }

    const name = `build-${request.attempt}`;
    const build = {
      buildId,
      attempt: request.attempt,
      dir: join(this.#run.workDir, name),
      artifactsDir: join(this.#run.recordDir, name),
      controller: new AbortController(),
      startedAt: new Date().toISOString(),
      status: 'IN_PROGRESS',
      phase: 'SUBMITTED',
      timings: {},
    } as LocalBuild;
    build.changed = new Promise((wake) => {
      build.wake = wake;
    });
    this.#builds.set(buildId, build);
    build.done = this.#execute(build, request);
    return { buildId };
  }

  async get(buildId: string): Promise<BuildState> {
    const build = this.#build(buildId);
    if (build.status === 'IN_PROGRESS') {
      await within(build.changed, this.#options.pollMs ?? 10_000);
    }
    return {
      buildId,
      status: build.status,
      phase: build.phase,
      startedAt: build.startedAt,
      endedAt: build.endedAt,
      artifactsLocation:
        build.status === 'SUCCEEDED' ? build.artifactsDir : undefined,
    };
  }

  async stop(buildId: string): Promise<void> {
    const build = this.#build(buildId);
    if (build.status === 'IN_PROGRESS') {
      build.controller.abort(new Error(`build ${buildId} was stopped`));
    }
    await build.done;
  }

  async readManifest(
    artifactsLocation: string,
  ): Promise<ManifestEntry[] | undefined> {
    const file = join(artifactsLocation, MANIFEST_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw error;
    }
    return parseManifest(text, file);
  }

  /** Stops every build still running and waits until each cleaned up. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#builds.keys()].map((id) => this.stop(id)));
  }

  /** What each build of the run did, in start order. */
  reports(): LocalBuildReport[] {
    return [...this.#builds.values()].map((build) => ({
      buildId: build.buildId,
      status: build.status,
      phase: build.phase,
      imageId: build.imageId,
      snapshotId: build.snapshotId,
      digest: build.digest,
      timings: { ...build.timings },
      failure: build.failure,
    }));
  }

  #build(buildId: string): LocalBuild {
    const build = this.#builds.get(buildId);
    if (build === undefined) {
      throw new InvalidInputError(`buildId: no local build ${buildId}`);
    }
    return build;
  }

  async #execute(build: LocalBuild, request: StartBuildRequest) {
    const log = await openLog(
      join(this.#run.recordDir, `${basename(build.dir)}.log`),
    );
    // Stopped on its own, or with the whole run when it is interrupted.
    const signal = anySignal(build.controller.signal, this.#run.signal);
    const say = (line: string) => {
      log.write(`${new Date().toISOString()} ${line}\n`);
    };
    const enter = (phase: Phase) => {
      build.phase = phase;
      say(`phase ${phase}`);
      this.#changed(build);
    };
    const progress = new BuildProgress((line) =>
      this.#run.progress(`build: ${line}`),
    );
    const onRootfsLine = (line: string) => {
      say(line);
      progress.line(line);
    };

    try {
      enter('PRE_BUILD');
      const prepared = await this.#prepare(
        build,
        request,
        onRootfsLine,
        signal,
      );

      enter('BUILD');
      const result = await buildRootfs({
        workDir: join(build.dir, 'image'),
        cacheDir: this.#run.cacheDir,
        renderedTree: prepared.renderedTree,
        runId: request.runId,
        log: onRootfsLine,
        signal,
      });
      Object.assign(build.timings, result.timings);

      enter('POST_BUILD');
      const started = performance.now();
      await this.#register(build, request, prepared, result);
      await cleanupRootfs(build.dir);
      build.timings.register = Math.round(performance.now() - started);
      this.#run.progress(
        `build: registered image ${build.imageId} (snapshot ` +
          `${build.snapshotId})`,
      );

      build.status = 'SUCCEEDED';
      build.phase = 'COMPLETED';
      say(`image ${build.imageId} sha256 ${build.digest}`);
    } catch (error) {
      build.status = signal.aborted ? 'STOPPED' : 'FAILED';
      build.failure = describeError(error);
      say(`build ${build.status} in ${build.phase}: ${build.failure}`);
      await this.#undo(build, say);
    } finally {
      progress.stop();
      build.endedAt = new Date().toISOString();
      this.#changed(build);
      await new Promise((done) => log.end(done));
    }
  }

  async #prepare(
    build: LocalBuild,
    request: StartBuildRequest,
    log: (line: string) => void,
    signal: AbortSignal,
  ) {
    const body = await readFile(request.profile.key);
    const digest = profileDigest(body);
    if (digest !== request.profileDigest) {
      throw new BuildFailedError(
        `profile ${request.profile.key} changed since Prepare read it ` +
          `(sha256 ${digest}, expected ${request.profileDigest})`,
      );
    }
    const profile = parseProfileBytes(body, request.profile.key);

    const base = await this.#options.store.describeImage(request.baseImageId);
    const expected = base?.tags[TAG_BASE_ARCHIVE];
    if (expected === undefined) {
      throw new BuildFailedError(
        `base image ${request.baseImageId} is not a local debootstrap base`,
      );
    }
    const archive = basename(
      await debootstrapBase(this.#run.cacheDir, log, signal),
    );
    if (archive !== expected) {
      throw new BuildFailedError(
        `base image ${request.baseImageId} is ${expected}, but the cache ` +
          `now holds ${archive}: start the run again`,
      );
    }

    // The image admits SIP from this run's side of the veth only, as the
    // EC2 image admits the pipeline's smoke-test source.
    const renderedTree = join(build.dir, 'rendered');
    await writeRenderedTree(
      renderedTree,
      renderProfile(profile, {
        smokeTestSources: [`${this.#run.network.hostAddress}/32`],
      }),
    );
    return {
      renderedTree,
      profileName: profile.name,
      templateDigest: await templateDigest(),
    };
  }

  async #register(
    build: LocalBuild,
    request: StartBuildRequest,
    prepared: { profileName: string; templateDigest: string },
    result: { imageFile: string; digest: string },
  ): Promise<void> {
    const store = this.#options.store;
    const provenance: Tags = {
      [TAG_MANAGED_BY]: MANAGED_BY_VALUE,
      [TAG_RUN_ID]: request.runId,
      [TAG_PROFILE]: prepared.profileName,
      [TAG_PROFILE_DIGEST]: request.profileDigest,
      [TAG_TEMPLATE_DIGEST]: prepared.templateDigest,
      [TAG_SOURCE_REVISION]: this.#options.sourceRevision,
      [TAG_SOURCE_DIRTY]: String(this.#options.sourceDirty ?? false),
      [TAG_BASE_IMAGE]: request.baseImageId,
    };
    const tags = {
      ...provenance,
      [TAG_IMAGE_DIGEST]: `sha256:${result.digest}`,
    };
    const snapshotId = `snap-${randomBytes(8).toString('hex')}`;
    const imageId = `img-${randomBytes(8).toString('hex')}`;

    // The snapshot first: no image ever names a snapshot that is missing.
    const snapshotDir = store.snapshotDir(snapshotId);
    await mkdir(snapshotDir, { recursive: true });
    build.snapshotId = snapshotId;
    await moveFile(result.imageFile, join(snapshotDir, SNAPSHOT_FILE));
    await store.putSnapshot({
      snapshotId,
      state: 'completed',
      encrypted: false,
      tags,
    });
    await store.putImage({
      imageId,
      name: `sbc-${prepared.profileName}-${request.runId}`,
      state: 'available',
      createdAt: new Date().toISOString(),
      architecture: localArchitecture(),
      ownerId: LOCAL_OWNER_ID,
      public: false,
      // No imdsSupport: a local test host has no instance metadata service
      // at all, so the attribute would claim something nothing enforces.
      tags,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          snapshotId,
          encrypted: false,
          volumeType: 'rootfs-tar',
        },
      ],
    });
    build.imageId = imageId;
    build.digest = result.digest;

    const runUuid = randomUUID();
    const size = (await stat(join(snapshotDir, SNAPSHOT_FILE))).size;
    await writeJsonFile(join(build.artifactsDir, MANIFEST_FILE), {
      builds: [
        {
          name: 'sbc',
          builder_type: LOCAL_BUILDER_TYPE,
          build_time: Math.floor(Date.now() / 1000),
          files: [{ name: join(snapshotDir, SNAPSHOT_FILE), size }],
          artifact_id: `local:${imageId}`,
          packer_run_uuid: runUuid,
          custom_data: {
            [MANIFEST_RUN_ID]: request.runId,
            profile: prepared.profileName,
            profile_digest: request.profileDigest,
            template_digest: prepared.templateDigest,
            source_revision: this.#options.sourceRevision,
            source_dirty: String(this.#options.sourceDirty ?? false),
            base_image_id: request.baseImageId,
          },
        },
      ],
      last_run_uuid: runUuid,
    });
  }

  /**
   * A failed or stopped build leaves nothing: no mount, no scratch, and no
   * image it registered (the state machine never learnt of it, so its
   * failure path could not discard it).
   */
  async #undo(build: LocalBuild, say: (line: string) => void) {
    const store = this.#options.store;
    try {
      if (build.imageId !== undefined) {
        await store.deregisterImage(build.imageId);
        say(`deregistered ${build.imageId}`);
      }
      if (build.snapshotId !== undefined) {
        await store.deleteSnapshot(build.snapshotId);
        say(`deleted ${build.snapshotId}`);
      }
    } catch (error) {
      say(`cannot remove the build's image: ${describeError(error)}`);
    }
    build.imageId = undefined;
    build.snapshotId = undefined;
    try {
      await cleanupRootfs(build.dir);
    } catch (error) {
      say(`cannot remove ${build.dir}: ${describeError(error)}`);
    }
  }

  #changed(build: LocalBuild): void {
    const wake = build.wake;
    build.changed = new Promise((next) => {
      build.wake = next;
    });
    wake();
  }
}

/** How long a step may run without a progress line before one is shown. */
const QUIET_MS = 10_000;
/** A provisioning script's own progress line (`==> what: ...`). */
const SCRIPT_MARKER = /^\[[^\]]+\] ==> (.*)$/;
/** The validation step's verdict (90-validate.sh). */
const VERDICT = /^\[[^\]]+\] (\d+ checks, \d+ mismatches|validation \w+.*)$/;

/**
 * The build's lines a person sees, as they come: each step's start and
 * end, the scripts' own `==> ` markers and the validation verdict,
 * packing, and for a step that runs long without any of these, a line
 * every QUIET_MS with its last output (apt's "Setting up ..." during the
 * package step).
 */
class BuildProgress {
  readonly #show: (line: string) => void;
  readonly #timer: NodeJS.Timeout;
  #step: { name: string; since: number; shownAt: number } | undefined;
  #last = '';

  constructor(show: (line: string) => void) {
    this.#show = show;
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
  }

  line(line: string): void {
    const started = /^step (\S+)( \(no network\))?$/.exec(line);
    if (started?.[1] !== undefined) {
      const now = performance.now();
      this.#step = { name: started[1], since: now, shownAt: now };
      this.#emit(line);
      return;
    }
    if (/^step \S+ done in /.test(line)) {
      this.#emit(line);
      this.#step = undefined;
      return;
    }
    const marked = (SCRIPT_MARKER.exec(line) ?? VERDICT.exec(line))?.[1];
    if (marked !== undefined) {
      this.#emit(`  ${marked}`);
      return;
    }
    if (/^packing |^build \S+: packed /.test(line)) {
      this.#emit(line.replace(/^build \S+: /, ''));
      return;
    }
    this.#last = line.replace(/^\[[^\]]+\] /, '').trim();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #emit(line: string): void {
    if (this.#step !== undefined) {
      this.#step.shownAt = performance.now();
    }
    this.#show(line);
  }

  #tick(): void {
    const step = this.#step;
    if (step === undefined || performance.now() - step.shownAt < QUIET_MS) {
      return;
    }
    const seconds = Math.round((performance.now() - step.since) / 1000);
    const last =
      this.#last.length > 72 ? `${this.#last.slice(0, 72)}...` : this.#last;
    this.#emit(
      `  ${step.name} running for ${seconds} s` +
        (last === '' ? '' : `, last output: ${last}`),
    );
  }
}

function anySignal(
  own: AbortSignal,
  run: AbortSignal | undefined,
): AbortSignal {
  return run === undefined ? own : AbortSignal.any([own, run]);
}

async function openLog(file: string): Promise<WriteStream> {
  await mkdir(join(file, '..'), { recursive: true });
  return createWriteStream(file, { flags: 'a' });
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') {
      throw error;
    }
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}
