import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pRetry, { AbortError } from 'p-retry';
import { findCommand, TOOLS } from '../../functions/lib/system/tools.ts';

/**
 * A real Kamailio on 127.0.0.1 for one test case: its own config, TLS
 * settings and runtime folder, on free ports so several test files can run
 * at once. It runs in the foreground (`-DD -E`) and is stopped by its pid.
 */

export const KAMAILIO_MODULES = '/usr/lib/x86_64-linux-gnu/kamailio/modules';

/** The FQDN the test SBC answers for (its `alias`). */
export const SBC_NAME = 'sbc.test.example';

/** What a suite that starts Kamailio needs on the machine. */
export const KAMAILIO_NEEDS = {
  root: true,
  tools: [TOOLS.kamailio, TOOLS.openssl],
} as const;

/** Request routes (`request_route` bodies) for the cases the tests need. */
export const ROUTES = {
  /** Answers OPTIONS for itself with 200, anything else with 404. */
  healthy: [
    'if (is_method("OPTIONS") && uri == myself && $rU == $null) {',
    '  sl_send_reply("200", "OK");',
    '  exit;',
    '}',
    'sl_send_reply("404", "Not Here");',
  ].join('\n'),
  /** Answers every request with 404. */
  notFound: 'sl_send_reply("404", "Not Found");',
  /** Drops everything that arrives over UDP, answers the rest. */
  silentOnUdp: 'if (proto == UDP) {\n  exit;\n}\n',
  /** Waits before handling what arrives over UDP. */
  slowOnUdp: (ms: number): string =>
    `if (proto == UDP) {\n  usleep("${ms * 1000}");\n}\n`,
} as const;

export interface KamailioTls {
  /** What the server sends: a chain file, or a leaf alone. */
  readonly certificateFile: string;
  readonly privateKeyFile: string;
  /** tls.cfg `method`; `TLSv1.2+` by default. */
  readonly method?: string;
  /** tls.cfg `cipher_list`; OpenSSL's default when absent. */
  readonly cipherList?: string;
  /** Certificates chosen by the SNI the client sends (`server_name`). */
  readonly byServerName?: readonly {
    readonly serverName: string;
    readonly certificateFile: string;
    readonly privateKeyFile: string;
  }[];
}

export interface KamailioCase {
  readonly tls: KamailioTls;
  /** The `request_route` body; `ROUTES.healthy` by default. */
  readonly route?: string;
  /** Names the SBC takes as its own; `[SBC_NAME]` by default. */
  readonly aliases?: readonly string[];
  /** Also listen on one more port with these protocols (a port left open). */
  readonly extraListen?: readonly ('udp' | 'tcp')[];
  /**
   * TCP and TLS worker processes; 1 by default. Kamailio 5.6 built against
   * OpenSSL 3 shares OpenSSL's per-thread state between its worker
   * processes: with several workers, concurrent handshakes now and then
   * end in a reset or a double free. One worker keeps the tests exact.
   */
  readonly tcpWorkers?: number;
}

export interface KamailioServer {
  readonly address: '127.0.0.1';
  /** SIP over UDP and TCP. */
  readonly sipPort: number;
  readonly tlsPort: number;
  /** The extra port, when `extraListen` asked for one. */
  readonly extraPort?: number;
  readonly pid: number;
  /** What Kamailio wrote to stdout and stderr (the last 256 KiB). */
  log(): string;
  /** Stops Kamailio by its pid and removes its folder; safe to call twice. */
  stop(): Promise<void>;
}

const LOG_LIMIT = 256 * 1024;
const running = new Set<number>();

// Last resort when the test process ends without afterAll (a crash): the
// process groups this module started must not outlive it.
process.once('exit', () => {
  for (const pid of running) {
    killGroup(pid, 'SIGKILL');
  }
});

/** Starts Kamailio for one case; retries with new ports if one was taken. */
export function startKamailio(kase: KamailioCase): Promise<KamailioServer> {
  return pRetry(() => startOnce(kase), {
    retries: 3,
    minTimeout: 100,
    shouldRetry: ({ error }) => error instanceof PortTakenError,
  });
}

class PortTakenError extends Error {
  override name = 'PortTakenError';
}

async function startOnce(kase: KamailioCase): Promise<KamailioServer> {
  const kamailio = findCommand(TOOLS.kamailio.command);
  if (kamailio === undefined) {
    throw new AbortError(
      'kamailio is not installed (apt-get install kamailio)',
    );
  }
  const sipPort = await freePort(true);
  const tlsPort = await freePort(false);
  const extraPort =
    kase.extraListen !== undefined && kase.extraListen.length > 0
      ? await freePort(true)
      : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'sbc-ami-kamailio-'));
  const runDir = join(dir, 'run');
  await mkdir(runDir);
  const tlsFile = join(dir, 'tls.cfg');
  const cfgFile = join(dir, 'kamailio.cfg');
  await writeFile(tlsFile, tlsConfig(kase.tls, tlsPort));
  await writeFile(
    cfgFile,
    kamailioConfig(kase, { sipPort, tlsPort, extraPort, tlsFile }),
  );

  const child = spawn(
    kamailio,
    ['-f', cfgFile, '-DD', '-E', '-Y', runDir, '-m', '64', '-M', '8'],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const collect = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  if (child.pid === undefined) {
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw new AbortError(`kamailio did not start: ${log.slice(-2000)}`);
  }
  const pid = child.pid;
  running.add(pid);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await stopProcess(child, pid, exited);
      running.delete(pid);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const tcpPorts = [sipPort, tlsPort];
  if (extraPort !== undefined && kase.extraListen?.includes('tcp')) {
    tcpPorts.push(extraPort);
  }
  try {
    await waitUntilListening(child, tcpPorts, () => log);
  } catch (error) {
    await stop();
    if (/Address already in use/i.test(log)) {
      throw new PortTakenError('a port was taken before Kamailio bound it');
    }
    throw error;
  }

  return {
    address: '127.0.0.1',
    sipPort,
    tlsPort,
    extraPort,
    pid,
    log: () => log,
    stop,
  };
}

function tlsConfig(tls: KamailioTls, tlsPort: number): string {
  const named = (tls.byServerName ?? []).flatMap((domain) => [
    `[server:127.0.0.1:${tlsPort}]`,
    `method = ${tls.method ?? 'TLSv1.2+'}`,
    'verify_certificate = no',
    'require_certificate = no',
    `server_name = ${domain.serverName}`,
    `certificate = ${domain.certificateFile}`,
    `private_key = ${domain.privateKeyFile}`,
    '',
  ]);
  return [
    '[server:default]',
    `method = ${tls.method ?? 'TLSv1.2+'}`,
    // One-way TLS, as Genesys connects: no client certificate asked.
    'verify_certificate = no',
    'require_certificate = no',
    `certificate = ${tls.certificateFile}`,
    `private_key = ${tls.privateKeyFile}`,
    ...(tls.cipherList === undefined
      ? []
      : [`cipher_list = ${tls.cipherList}`]),
    '',
    ...named,
    '[client:default]',
    'verify_certificate = no',
    'require_certificate = no',
    '',
  ].join('\n');
}

function kamailioConfig(
  kase: KamailioCase,
  ports: {
    sipPort: number;
    tlsPort: number;
    extraPort: number | undefined;
    tlsFile: string;
  },
): string {
  const aliases = kase.aliases ?? [SBC_NAME];
  const extra =
    ports.extraPort === undefined
      ? []
      : (kase.extraListen ?? []).map(
          (proto) => `listen=${proto}:127.0.0.1:${ports.extraPort}`,
        );
  return [
    '#!KAMAILIO',
    'debug=2',
    'log_stderror=yes',
    'children=4',
    `tcp_children=${kase.tcpWorkers ?? 1}`,
    'auto_aliases=no',
    'enable_tls=yes',
    ...aliases.map((alias) => `alias="${alias}"`),
    `listen=udp:127.0.0.1:${ports.sipPort}`,
    `listen=tcp:127.0.0.1:${ports.sipPort}`,
    `listen=tls:127.0.0.1:${ports.tlsPort}`,
    ...extra,
    `mpath="${KAMAILIO_MODULES}/"`,
    // tls must load before any other module that uses libssl.
    'loadmodule "tls.so"',
    'loadmodule "sl.so"',
    'loadmodule "pv.so"',
    'loadmodule "textops.so"',
    'loadmodule "cfgutils.so"',
    'loadmodule "xlog.so"',
    `modparam("tls", "config", "${ports.tlsFile}")`,
    'request_route {',
    '  xlog("L_INFO", "$rm $ru over $pr from $si:$sp\\n");',
    kase.route ?? ROUTES.healthy,
    '}',
    '',
  ].join('\n');
}

/**
 * A port free on 127.0.0.1 for TCP (and UDP too, when `udp`) at the time of
 * the call: a port that nothing answers on, for "must stay closed" cases.
 */
export function freePort(udp: boolean): Promise<number> {
  return pRetry(
    async () => {
      const server = createServer();
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : 0);
        });
      });
      try {
        if (udp) {
          await udpFree(port);
        }
        return port;
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    },
    { retries: 20, minTimeout: 1, factor: 1 },
  );
}

function udpFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve()));
  });
}

/** Waits until every TCP port accepts connections, or Kamailio exits. */
async function waitUntilListening(
  child: ChildProcess,
  ports: readonly number[],
  log: () => string,
): Promise<void> {
  await pRetry(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new AbortError(
          `kamailio exited (${child.exitCode ?? child.signalCode}) ` +
            `before listening:\n${log().slice(-3000)}`,
        );
      }
      await Promise.all(ports.map(accepts));
    },
    { retries: 200, minTimeout: 25, factor: 1, maxRetryTime: 15_000 },
  );
}

function accepts(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
    socket.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve();
    });
  });
}

/**
 * SIGTERM to the main process, which stops its children; SIGKILL to the
 * process group it leads (spawned detached) if anything is left after 5 s.
 */
async function stopProcess(
  child: ChildProcess,
  pid: number,
  exited: Promise<void>,
): Promise<void> {
  const alive = child.exitCode === null && child.signalCode === null;
  if (alive) {
    child.kill('SIGTERM');
    await Promise.race([exited, delay(5000)]);
  }
  if (groupAlive(pid)) {
    killGroup(pid, 'SIGTERM');
    await waitForGroupExit(pid, 2000);
  }
  if (groupAlive(pid)) {
    killGroup(pid, 'SIGKILL');
    await waitForGroupExit(pid, 2000);
  }
  await Promise.race([exited, delay(1000)]);
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

async function waitForGroupExit(pid: number, ms: number): Promise<void> {
  await pRetry(
    () => {
      if (groupAlive(pid)) {
        throw new Error(`process group ${pid} still running`);
      }
    },
    { retries: Math.ceil(ms / 50), minTimeout: 50, factor: 1 },
  ).catch(() => undefined);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
