import { stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  ConfigurationError,
  describeError,
} from '../../functions/lib/errors.ts';
import { LOCAL_MODE_TOOLS, REPO_ROOT } from '../../functions/lib/local/deps.ts';
import { localPaths } from '../../functions/lib/local/paths.ts';
import {
  type LocalPipelineResult,
  type LocalRunStart,
  runLocalPipeline,
} from '../../functions/lib/local/pipeline.ts';
import type { LocalEvent } from '../../functions/lib/local/state-machine.ts';
import { formatReport } from '../../functions/lib/probe/index.ts';
import {
  ProfileError,
  ProfileReadError,
  readProfileFile,
} from '../../functions/lib/profile/index.ts';
import { missingRequirements } from '../../functions/lib/system/tools.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { RegisterCommand } from '../main.ts';

/** The profile `npm start` builds. */
export const DEFAULT_PROFILE = join(
  REPO_ROOT,
  'examples',
  'profiles',
  'genesys-byoc.json',
);

export interface LocalOptions {
  json?: boolean;
  /** False (`--no-keep-cache`): a private cache, removed afterwards. */
  keepCache?: boolean;
  certDays?: string;
  cacheDir?: string;
}

export interface LocalOutput {
  /** The verdict and summary (stdout). */
  readonly out?: (text: string) => void;
  /** Progress and warnings (stderr with --json, else stdout). */
  readonly err?: (text: string) => void;
  /** Aborting interrupts the run (the command wires SIGINT and SIGTERM). */
  readonly signal?: AbortSignal;
  /** Called once the run has its identity (see `LocalRunStart`). */
  readonly onStart?: (run: LocalRunStart) => void;
}

/** `sbc-ami local [PROFILE]`: the whole pipeline on this machine. */
export const registerLocal: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('local')
    .description(
      'run the whole pipeline on this machine: build a Debian 12 image ' +
        'from the profile, test it in a network namespace, sign and ' +
        'publish it to the local registry (needs root)',
    )
    .argument('[profile]', 'SIP profile (JSON)', DEFAULT_PROFILE)
    .option('--json', 'print the result as JSON (progress goes to stderr)')
    .option(
      '--keep-cache',
      'reuse the debootstrap base and packages cached by earlier runs',
      true,
    )
    .option(
      '--no-keep-cache',
      'a cold run: start from an empty cache and remove it afterwards',
    )
    .option(
      '--cache-dir <dir>',
      'where the base and packages are cached (default $SBC_AMI_HOME/cache)',
    )
    .option(
      '--cert-days <n>',
      "days the test host's throwaway certificate is valid; 0 or less " +
        'gives an expired one',
      '90',
    )
    .action(async (profile: string, options: LocalOptions) => {
      const controller = new AbortController();
      let started: LocalRunStart | undefined;
      const detach = onInterrupt(controller, () => started);
      try {
        exit(
          await runLocal(profile, options, {
            signal: controller.signal,
            onStart: (run) => {
              started = run;
            },
          }),
        );
      } finally {
        detach();
      }
    });
};

/** Runs local mode and prints the verdict; resolves to the exit code. */
export async function runLocal(
  profileFile: string,
  options: LocalOptions,
  output: LocalOutput = {},
): Promise<number> {
  const out = output.out ?? ((text: string) => console.log(text));
  const err =
    output.err ??
    (options.json === true
      ? (text: string) => console.error(text)
      : (text: string) => console.log(text));

  const certificateDays = parseCertDays(options.certDays ?? '90');
  await checkProfile(profileFile);
  const missing = missingRequirements({ root: true, tools: LOCAL_MODE_TOOLS });
  if (missing.length > 0) {
    throw new UsageError(
      `local mode needs:\n${missing.map((line) => `  - ${line}`).join('\n')}`,
    );
  }

  const paths = localPaths();
  const keepCache = options.keepCache !== false;
  const cacheDir = keepCache
    ? resolve(options.cacheDir ?? paths.cache)
    : join(paths.home, `cache-cold-${process.pid}`);
  if (!keepCache && options.cacheDir !== undefined) {
    throw new UsageError('--cache-dir and --no-keep-cache exclude each other');
  }

  const progress = new Progress(err);
  err(`sbc-ami local: ${display(profileFile)}`);
  err(`  home ${paths.home}, cache ${cacheDir}${keepCache ? '' : ' (cold)'}`);
  let result: LocalPipelineResult;
  try {
    result = await runLocalPipeline({
      profileFile,
      paths,
      cacheDir,
      certificateDays,
      signal: output.signal,
      onStart: (run) => {
        output.onStart?.(run);
        progress.start(run);
      },
      onEvent: (event, elapsedMs) => progress.event(event, elapsedMs),
      progress: (line) => progress.line(line),
      notify: (message) => progress.notification(message),
    });
  } catch (error) {
    // Not a git checkout, no Debian mirror configured: set-up, not the run.
    if (error instanceof ConfigurationError) {
      throw new UsageError(error.message, { cause: error });
    }
    throw error;
  } finally {
    if (!keepCache) {
      await removeColdCache(cacheDir, err);
    }
  }

  if (options.json === true) {
    out(JSON.stringify(jsonResult(result), null, 2));
  } else {
    out(summary(result));
  }
  if (result.leftBehind.length > 0) {
    err('left behind, remove by hand:');
    for (const item of result.leftBehind) {
      err(`  - ${item}`);
    }
  }
  const verified = result.verification?.ok === true;
  return result.status === 'SUCCEEDED' && verified ? EXIT_OK : EXIT_FAILED;
}

/** `--cert-days`: a whole number of days, negative for an expired one. */
export function parseCertDays(text: string): number {
  if (!/^-?\d{1,5}$/.test(text.trim())) {
    throw new UsageError(
      `--cert-days: ${JSON.stringify(text)} is not a whole number of days`,
    );
  }
  return Number(text.trim());
}

async function checkProfile(file: string): Promise<void> {
  try {
    await readProfileFile(file);
  } catch (error) {
    if (error instanceof ProfileReadError || error instanceof ProfileError) {
      throw new UsageError(error.message, { cause: error });
    }
    throw error;
  }
}

async function removeColdCache(dir: string, err: (text: string) => void) {
  const { cleanupRootfs } = await import('../../functions/lib/local/rootfs.ts');
  try {
    await stat(dir);
    await cleanupRootfs(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      err(`cannot remove the cold cache ${dir}: ${describeError(error)}`);
    }
  }
}

/**
 * The wait loops of the definition (Wait, then a check Task, then a
 * Choice), with what their check looks at: shown as one line when the loop
 * starts and one when it ends, not once per round.
 */
const LOOPS: ReadonlyArray<{ states: readonly string[]; checks: string }> = [
  {
    states: ['WaitForBuild', 'CheckBuild', 'BuildReady'],
    checks: 'build status',
  },
  {
    states: ['WaitForImage', 'CheckImage', 'ImageReady'],
    checks: 'image state',
  },
  {
    states: ['WaitForTestInstance', 'CheckTestInstance', 'TestInstanceReady'],
    checks: 'test host state',
  },
];

/**
 * Progress lines for a person: one per state entered, with the time since
 * the start at which it was entered; a wait loop as one line when it starts
 * and one saying how often it checked when it ends; what the adapters
 * report, indented, as it happens.
 */
export class Progress {
  readonly #write: (text: string) => void;
  #loop:
    | {
        checks: string;
        states: readonly string[];
        since: number;
        rounds: number;
      }
    | undefined;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  start(run: LocalRunStart): void {
    this.#write(`  run ${run.runId}, execution ${run.executionName}`);
    this.#write(
      `  test host ${run.network.guestAddress} in ${run.network.namespace}` +
        `, probed from ${run.network.hostAddress}`,
    );
    this.#write(`  logs ${run.recordDir}/ (Task logs: pipeline.log)`);
    if (run.source.dirty) {
      this.#write(`  WARNING: ${dirtyWarning(run.source)}`);
    }
    this.#write('  (seconds since the start, at which each state was entered)');
  }

  event(event: LocalEvent, elapsedMs: number): void {
    const state = event.state;
    if (state === undefined) {
      return;
    }
    if (event.type === 'StateFailed' && event.stateType !== 'Fail') {
      this.#write(`${clock(elapsedMs)}  ${state} failed: ${event.error}`);
      return;
    }
    if (event.type !== 'StateEntered') {
      return;
    }
    if (this.#loop?.states.includes(state)) {
      if (state === this.#loop.states[1]) {
        this.#loop.rounds += 1;
      }
      return;
    }
    this.#endLoop(elapsedMs);
    const loop = LOOPS.find((candidate) => candidate.states.includes(state));
    if (loop !== undefined) {
      const rounds = state === loop.states[1] ? 1 : 0;
      this.#loop = { ...loop, since: elapsedMs, rounds };
      this.#write(
        `${clock(elapsedMs)}  ${loop.states.join(' > ')}: a loop that ` +
          `checks the ${loop.checks} until it is ready`,
      );
      return;
    }
    this.#write(`${clock(elapsedMs)}  ${state}`);
  }

  line(text: string): void {
    this.#write(`${' '.repeat(9)}${text}`);
  }

  notification(message: string): void {
    for (const text of message.split('\n')) {
      this.#write(`${' '.repeat(9)}| ${text}`);
    }
  }

  #endLoop(elapsedMs: number): void {
    if (this.#loop !== undefined) {
      const seconds = ((elapsedMs - this.#loop.since) / 1000).toFixed(1);
      this.#write(
        `${clock(elapsedMs)}  loop done: ${this.#loop.checks} checked ` +
          `${this.#loop.rounds} time(s) (${this.#loop.states[1]}) over ` +
          `${seconds} s`,
      );
    }
    this.#loop = undefined;
  }
}

/** What a person should know about a build from uncommitted changes. */
function dirtyWarning(source: LocalRunStart['source']): string {
  return (
    `the working tree has ${source.changes.length} uncommitted ` +
    `change(s) (git status): the image is built from them, not from ` +
    `commit ${source.revision.slice(0, 12)} alone; its provenance says ` +
    'sourceDirty: true'
  );
}

function clock(ms: number): string {
  return `${(ms / 1000).toFixed(1).padStart(7)}s`;
}

/** The final summary for a person. */
export function summary(result: LocalPipelineResult): string {
  const seconds = (result.timings.totalMs / 1000).toFixed(1);
  const lines: string[] = [''];
  const row = (label: string, text: string) =>
    lines.push(`${label.padEnd(11)}${text}`);

  if (result.status === 'SUCCEEDED') {
    lines.push(`SUCCEEDED in ${seconds} s: run ${result.runId}`, '');
    row('image', `${result.imageId} (${result.image?.name ?? '?'})`);
    row(
      'lies at',
      `${result.imageFile} (a tar file, not encrypted: local images are ` +
        'plain files)',
    );
    row(
      'digest',
      `sha256:${result.digest} (SHA-256 of that file, as the build ` +
        'recorded it)',
    );
    row(
      'published',
      `${result.published?.location} (${result.published?.history.length} ` +
        'image(s) in its history)',
    );
    verificationRows(result, row);
  } else if (result.status === 'FAILED') {
    lines.push(`FAILED in ${seconds} s: ${result.error}`, '');
    row('reason', result.cause ?? result.error ?? 'unknown');
    if (result.imageId !== undefined) {
      row(
        'image',
        `${result.imageId} discarded (deregistered, its snapshot deleted)`,
      );
    }
  } else {
    lines.push(
      `INTERRUPTED after ${seconds} s: the run was stopped and cleaned up`,
    );
  }

  if (result.source.dirty) {
    row(
      'source',
      `commit ${result.source.revision} plus ` +
        `${result.source.changes.length} uncommitted change(s): recorded ` +
        'as sourceDirty: true',
    );
  }

  if (result.smoke !== undefined) {
    lines.push('', 'smoke test', formatReport(result.smoke));
  }
  lines.push('');
  row('logs', `${result.recordDir}/`);
  row('', `Task logs (JSON) ${relative(result.recordDir, result.logFile)}`);
  return lines.join('\n');
}

/**
 * What `sbc-ami verify --local` checked, as checked: the signature, the
 * subject (the image as described by its record), the contents (the
 * snapshot file hashed again against the signed digest).
 */
function verificationRows(
  result: LocalPipelineResult,
  row: (label: string, text: string) => void,
): void {
  const verification = result.verification;
  if (verification?.ok !== true) {
    row('verified', 'NO: the image does not match its signed provenance');
    for (const reason of verification?.reasons ?? []) {
      row('', `- ${reason}`);
    }
    return;
  }
  row(
    'verified',
    `signature valid with ${result.publicKeyFile} (key ${verification.keyId})`,
  );
  const contents = verification.contents;
  const fields = 'image id, snapshot, architecture, base image';
  row(
    '',
    `subject: ${fields}${contents?.signed === undefined ? '' : ', content digest'}` +
      ` as signed (subject sha256 ${verification.subjectDigest})`,
  );
  if (contents?.hashed !== undefined) {
    const files = contents.hashed.files.map((file) => basename(file));
    row(
      '',
      `contents: ${files.join(', ')} hashed again now, sha256 ` +
        `${contents.hashed.sha256} = the signed content digest`,
    );
  } else {
    row('', 'contents: NOT checked (the signed subject has no content digest)');
  }
  row('', `attestation ${verification.location}`);
}

function jsonResult(result: LocalPipelineResult) {
  return {
    status: result.status,
    runId: result.runId,
    executionName: result.executionName,
    error: result.error,
    cause: result.cause,
    imageId: result.imageId,
    imageName: result.image?.name,
    digest: result.digest === undefined ? undefined : `sha256:${result.digest}`,
    imageFile: result.imageFile,
    source: {
      revision: result.source.revision,
      dirty: result.source.dirty,
      changes: result.source.changes.length,
    },
    published: result.published,
    attestation: result.attestation,
    verification:
      result.verification === undefined
        ? undefined
        : {
            ok: result.verification.ok,
            reasons: result.verification.reasons,
            subjectDigest: result.verification.subjectDigest,
            contents: result.verification.contents,
            keyId: result.verification.keyId,
            publicKeyFile: result.publicKeyFile,
          },
    smoke: result.smoke,
    timings: result.timings,
    recordDir: result.recordDir,
    logFile: result.logFile,
    leftBehind: result.leftBehind,
  };
}

function display(file: string): string {
  const path = relative(process.cwd(), resolve(file));
  return path.startsWith('..') ? resolve(file) : path;
}

/**
 * Ctrl-C (or SIGTERM) interrupts the run and lets its cleanup finish; a
 * second one says what a third does; the third quits at once, saying what
 * it leaves for the next run's sweep.
 */
function onInterrupt(
  controller: AbortController,
  run: () => LocalRunStart | undefined,
): () => void {
  let seen = 0;
  const handler = (signal: NodeJS.Signals) => {
    seen += 1;
    if (seen === 1) {
      console.error(
        `\n${signal}: stopping the run and cleaning up ` +
          '(namespace, processes, mounts, unpublished image)...',
      );
      controller.abort(new Error(`interrupted by ${signal}`));
      return;
    }
    if (seen === 2) {
      console.error(
        'still cleaning up; interrupt once more to quit at once (the next ' +
          'run then sweeps what this one leaves)',
      );
      return;
    }
    detach();
    console.error(quitMessage(run()?.leftovers() ?? []));
    process.exit(
      128 + (osConstants.signals[signal] ?? osConstants.signals.SIGINT),
    );
  };
  const detach = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return detach;
}

/** What quitting at once says it leaves. */
export function quitMessage(leftovers: readonly string[]): string {
  if (leftovers.length === 0) {
    return 'quitting at once; the run had nothing on this machine yet';
  }
  return [
    "quitting at once; left for the next run's sweep (the next " +
      '`sbc-ami local` removes what a run whose process is gone left):',
    ...leftovers.map((line) => `  - ${line}`),
  ].join('\n');
}
