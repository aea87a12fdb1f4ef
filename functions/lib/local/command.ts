/**
 * Short system commands of local mode (ip, nft, openssl, tar, git) and the
 * process bookkeeping of the test host: which processes run inside a
 * folder (a chroot), and ending exactly those.
 */
import { execFile } from 'node:child_process';
import { readdir, readlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import pRetry from 'p-retry';

export interface CommandOptions {
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Output above this size is an error; ip and openssl print little. */
  readonly maxBuffer?: number;
}

/** A command that exited non-zero: its arguments and what it printed. */
export class CommandError extends Error {
  override name = 'CommandError';
  readonly command: string;
  readonly stderr: string;

  constructor(command: string, stderr: string, cause: unknown) {
    const detail = stderr.trim().split('\n').slice(-8).join('\n');
    super(`${command} failed${detail === '' ? '' : `: ${detail}`}`, {
      cause,
    });
    this.command = command;
    this.stderr = stderr;
  }
}

/** Runs a command to its end and resolves to what it printed on stdout. */
export function command(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  return new Promise((resolvePromise, rejectPromise) => {
    execFile(
      file,
      args,
      {
        signal: options.signal,
        env: options.env,
        cwd: options.cwd,
        maxBuffer: options.maxBuffer ?? 16 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolvePromise(stdout);
          return;
        }
        if (options.signal?.aborted) {
          rejectPromise(options.signal.reason ?? error);
          return;
        }
        rejectPromise(
          new CommandError([file, ...args].join(' '), stderr, error),
        );
      },
    );
  });
}

/** True while a process with this pid exists (a zombie counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the process runs chrooted at or below `dir`. */
export async function rootIsUnder(pid: number, dir: string): Promise<boolean> {
  const root = resolve(dir);
  try {
    const processRoot = await readlink(`/proc/${pid}/root`);
    return processRoot === root || processRoot.startsWith(`${root}/`);
  } catch {
    // gone meanwhile, or not ours to inspect
    return false;
  }
}

/**
 * Pids of the processes whose root directory is at or below `dir`: what a
 * chroot into it started, whatever their parents and process groups.
 */
export async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry) && (await rootIsUnder(Number(entry), dir))) {
      pids.push(Number(entry));
    }
  }
  return pids.filter((pid) => pid !== process.pid);
}

/**
 * Ends the processes chrooted below `dir`: SIGTERM, then SIGKILL to those
 * still there after `graceMs`. Each pid is checked again before each signal
 * so a pid reused by an unrelated process is never hit. Resolves to the pids
 * it signalled; those still alive after the kill are in `survivors`.
 */
export async function endProcessesUnder(
  dir: string,
  graceMs = 5000,
): Promise<{ ended: number[]; survivors: number[] }> {
  const ended = await processesUnder(dir);
  if (ended.length === 0) {
    return { ended, survivors: [] };
  }
  await signalUnder(ended, dir, 'SIGTERM');
  await waitUntil(async () => (await processesUnder(dir)).length === 0, {
    timeoutMs: graceMs,
  });
  const left = await processesUnder(dir);
  await signalUnder(left, dir, 'SIGKILL');
  await waitUntil(async () => (await processesUnder(dir)).length === 0, {
    timeoutMs: 2000,
  });
  const survivors = await processesUnder(dir);
  return { ended: [...new Set([...ended, ...left])], survivors };
}

async function signalUnder(
  pids: readonly number[],
  dir: string,
  signal: NodeJS.Signals,
): Promise<void> {
  for (const pid of pids) {
    if (await rootIsUnder(pid, dir)) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited between the check and the signal
      }
    }
  }
}

/**
 * Checks `condition` every `intervalMs` until it holds; false once
 * `timeoutMs` has passed (or the signal fired) without it holding.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<boolean> {
  const intervalMs = options.intervalMs ?? 50;
  try {
    await pRetry(
      async () => {
        if (!(await condition())) {
          throw new Error('not yet');
        }
      },
      {
        retries: Math.ceil(options.timeoutMs / intervalMs),
        minTimeout: intervalMs,
        factor: 1,
        randomize: false,
        maxRetryTime: options.timeoutMs,
        signal: options.signal,
      },
    );
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits for `promise` at most `ms`: its value, or undefined once the time
 * is up. The timer is cleared either way, so it never holds the process.
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((done) => {
        timer = setTimeout(() => done(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
