import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pRetry, { AbortError } from 'p-retry';
import {
  parseProfile,
  type RenderedFile,
  type SipProfile,
} from '../../functions/lib/profile/index.ts';

export const run = promisify(execFile);

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const EXAMPLE_PROFILE = join(
  ROOT,
  'examples',
  'profiles',
  'genesys-byoc.json',
);
export const FIXTURES = join(ROOT, 'tests', 'fixtures', 'profiles');

/** The profiles every rendering test goes through, by short name. */
export const PROFILE_FILES = {
  example: EXAMPLE_PROFILE,
  'ipv6-peers': join(FIXTURES, 'ipv6-peers.json'),
  'one-peer': join(FIXTURES, 'one-peer.json'),
  'wide-port-range': join(FIXTURES, 'wide-port-range.json'),
  'options-closed': join(FIXTURES, 'options-closed.json'),
} as const;

export type ProfileName = keyof typeof PROFILE_FILES;
export const PROFILE_NAMES = Object.keys(PROFILE_FILES) as ProfileName[];

/** The raw JSON of a profile file, for tests that alter it. */
export function rawProfile(name: ProfileName): Record<string, unknown> {
  return JSON.parse(readFileSync(PROFILE_FILES[name], 'utf8'));
}

export function loadProfile(name: ProfileName): SipProfile {
  return parseProfile(rawProfile(name), PROFILE_FILES[name]);
}

export function fileOf(files: RenderedFile[], path: string): string {
  const file = files.find((candidate) => candidate.path === path);
  if (file === undefined) {
    throw new Error(`${path} was not rendered`);
  }
  return file.content;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `sbc-profile-${prefix}-`));
}

/** Whether a port is free on loopback for both TCP and UDP right now. */
async function isFree(port: number): Promise<boolean> {
  try {
    await new Promise<void>((done, fail) => {
      const server = createServer();
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => server.close(() => done()));
    });
    await new Promise<void>((done, fail) => {
      const socket = createSocket('udp4');
      socket.once('error', fail);
      socket.bind(port, '127.0.0.1', () => socket.close(() => done()));
    });
    return true;
  } catch {
    return false;
  }
}

/** Ports a test must not take, such as the profile's RTP range. */
export interface PortRange {
  readonly portMin: number;
  readonly portMax: number;
}

function inRange(port: number, range: PortRange | undefined): boolean {
  return range !== undefined && range.portMin <= port && port <= range.portMax;
}

/**
 * A port free on loopback for both TCP and UDP at the time of asking,
 * outside `avoid`: rendering refuses a listening port in the RTP range.
 */
export async function freePort(avoid?: PortRange): Promise<number> {
  return pRetry(
    async () => {
      const port = await new Promise<number>((done, fail) => {
        const server = createServer();
        server.once('error', fail);
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          server.close(() =>
            typeof address === 'object' && address !== null
              ? done(address.port)
              : fail(new Error('no port')),
          );
        });
      });
      if (inRange(port, avoid)) {
        throw new Error(`port ${port} is in the range to avoid`);
      }
      if (!(await isFree(port))) {
        throw new Error(`port ${port} is taken for UDP`);
      }
      return port;
    },
    // The kernel picks from about 28,000 ports: a third may be avoided.
    { retries: 30, minTimeout: 1, maxTimeout: 10 },
  );
}

/** Two consecutive free ports outside `avoid`; resolves to the first. */
export async function freePortPair(avoid?: PortRange): Promise<number> {
  return pRetry(
    async () => {
      const port = await freePort(avoid);
      if (
        port >= 65535 ||
        inRange(port + 1, avoid) ||
        !(await isFree(port + 1))
      ) {
        throw new Error(`port ${port + 1} is taken or to be avoided`);
      }
      return port;
    },
    { retries: 10, minTimeout: 10 },
  );
}

/** An RSA key and a self-signed certificate for the FQDN, in `dir`. */
export async function makeCertificate(
  dir: string,
  fqdn: string,
): Promise<{ certificate: string; key: string; pem: string }> {
  const certificate = join(dir, 'sbc.crt');
  const key = join(dir, 'sbc.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    certificate,
    '-days',
    '2',
    '-subj',
    `/CN=${fqdn}`,
    '-addext',
    `subjectAltName=DNS:${fqdn}`,
  ]);
  return { certificate, key, pem: await readFile(certificate, 'utf8') };
}

/** The child pids of a process, from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) {
      continue;
    }
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (in parentheses): state, ppid...
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) {
        children.push(Number(entry));
      }
    } catch {
      // the process ended while being looked at
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A daemon started in the foreground by a test, stopped by its pid. */
export interface Daemon {
  readonly pid: number;
  output(): string;
  /** Whether it has exited, and with which code. */
  exited(): { code: number | null } | undefined;
  stop(): Promise<void>;
}

export function startDaemon(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Daemon {
  const child: ChildProcess = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let exit: { code: number | null } | undefined;
  child.stdout?.on('data', (chunk) => {
    text += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    text += chunk;
  });
  const ended = new Promise<void>((done) => {
    child.once('exit', (code) => {
      exit = { code };
      done();
    });
    child.once('error', (error) => {
      text += `\n${String(error)}`;
      exit = { code: null };
      done();
    });
  });
  const pid = child.pid ?? -1;

  return {
    pid,
    output: () => text,
    exited: () => exit,
    async stop() {
      if (exit !== undefined || pid < 0) {
        return;
      }
      const children = await childrenOf(pid);
      child.kill('SIGTERM');
      const timer = new Promise<'late'>((done) =>
        setTimeout(() => done('late'), 10_000).unref(),
      );
      if ((await Promise.race([ended, timer])) === 'late') {
        child.kill('SIGKILL');
        await ended;
      }
      // Its workers normally go with it; any left over are ours to end.
      for (const childPid of children) {
        if (alive(childPid)) {
          process.kill(childPid, 'SIGKILL');
        }
      }
    },
  };
}

/** Resolves once a TCP port on loopback accepts, or fails with the log. */
export async function waitForTcp(daemon: Daemon, port: number): Promise<void> {
  await pRetry(
    async () => {
      if (daemon.exited() !== undefined) {
        throw new AbortError(
          `exited with ${daemon.exited()?.code} before listening:\n` +
            daemon.output().slice(-3000),
        );
      }
      await new Promise<void>((done, fail) => {
        const socket = connect({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          done();
        });
        socket.once('error', fail);
      });
    },
    { retries: 40, minTimeout: 100, maxTimeout: 250, factor: 1.2 },
  );
}

/** Removes a temp dir, whatever is in it. */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) {
    await rm(dir, { recursive: true, force: true });
  }
}
