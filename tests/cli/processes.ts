import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const REPO = join(import.meta.dirname, '..', '..');
export const BIN = join(REPO, 'bin', 'sbc-ami.js');

/** What a finished process left: its exit code, output and run time. */
export interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

/** Longer than any command under test may take; shorter than a test. */
export const KILL_AFTER_MS = 25_000;

/**
 * Runs a program with exactly `env` (nothing inherited), killed after
 * `killAfterMs` so a hang fails the test instead of outliving it.
 */
export function runProgram(
  file: string,
  args: readonly string[],
  options: {
    readonly env: NodeJS.ProcessEnv;
    readonly cwd?: string;
    readonly killAfterMs?: number;
  },
): Promise<Finished> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      file,
      [...args],
      {
        env: options.env,
        cwd: options.cwd ?? REPO,
        timeout: options.killAfterMs ?? KILL_AFTER_MS,
      },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: unknown }) | null;
        resolve({
          code:
            failed === null
              ? 0
              : typeof failed.code === 'number'
                ? failed.code
                : -1,
          stdout,
          stderr,
          elapsedMs: performance.now() - started,
        });
      },
    );
  });
}

/** `sbc-ami ARGS` in its own process, with exactly `env` and PATH. */
export function sbcAmi(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<Finished> {
  return runProgram(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    cwd,
  });
}

/**
 * An AWS environment that can reach nothing but `endpoint`: fixed keys, a
 * home without ~/.aws, and no instance metadata lookups (169.254.169.254).
 * A key set to `undefined` is left out.
 */
export function awsEnv(
  home: string,
  overrides: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  const env: Record<string, string | undefined> = {
    HOME: home,
    AWS_CONFIG_FILE: join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-for-tests',
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined),
  );
}

/** A TCP listener on loopback that accepts and never says a word. */
export interface SilentServer {
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

export async function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    close: async () => {
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback URL where nothing listens: connecting is refused. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** A temporary folder, removed by the returned function. */
export async function scratch(
  prefix: string,
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `sbc-cli-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
