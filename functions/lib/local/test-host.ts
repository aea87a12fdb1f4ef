/**
 * The local test host: the image unpacked into a folder and brought up in
 * a network namespace of its own, as an EC2 instance boots from the AMI.
 * The image's nftables ruleset guards the namespace; Kamailio and
 * rtpengine start from the image's own binaries, units and drop-ins; a
 * throwaway certificate stands in for the one fetched at first boot.
 *
 * Each service runs through `ip netns exec`, which gives it a mount
 * namespace of its own: the /proc and /dev mounts its chroot needs live
 * and die with the service and never appear in this machine's mount table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  readFile,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { z } from 'zod';
import {
  describeError,
  InvalidInputError,
  TestInstanceError,
} from '../errors.ts';
import type {
  DeleteOutcome,
  HostStatus,
  LaunchRequest,
  TestHostRunner,
} from '../ports.ts';
import { DEFAULT_PORTS } from '../profile/index.ts';
import { issueThrowawayCertificate } from './certificate.ts';
import {
  command,
  endProcessesUnder,
  isAlive,
  processesUnder,
  waitUntil,
  within,
} from './command.ts';
import { type LocalImageStore, SNAPSHOT_FILE } from './image-store.ts';
import { writeJsonFile } from './json-file.ts';
import { createNetwork, removeNetwork, runTag } from './netns.ts';
import { cleanupRootfs } from './rootfs.ts';
import { type LocalRun, testHostCaFile } from './run-context.ts';
import { readServiceUnit } from './systemd-unit.ts';

/**
 * The services a test host starts, in order: Kamailio's drop-in orders it
 * after rtpengine, whose answer each Kamailio worker checks as it starts.
 * `foreground` turns a forking service into one whose pid stays ours.
 */
const SERVICES = [
  { unit: 'rtpengine-daemon.service', log: 'rtpengine.log', foreground: [] },
  { unit: 'kamailio.service', log: 'kamailio.log', foreground: ['-DD', '-E'] },
] as const;

/** Device nodes the services' libraries open (OpenSSL, glibc). */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom'];

/**
 * Runs in the service's fresh mount namespace (made by `ip netns exec`):
 * mounts what the chroot needs, then becomes the service.
 */
const LAUNCHER = [
  'set -eu',
  'root=$1',
  'shift',
  'mount -t proc -o nosuid,nodev,noexec proc "$root/proc"',
  'mkdir -p "$root/dev"',
  `for node in ${DEVICES.join(' ')}; do`,
  '  [ -e "$root/dev/$node" ] || : >"$root/dev/$node"',
  '  mount --bind "/dev/$node" "$root/dev/$node"',
  'done',
  'exec chroot "$@"',
].join('\n');

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Service {
  readonly unit: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Settles when the process has exited; `exit` then says how. */
  readonly exited: Promise<void>;
  readonly outcome: { exit?: string };
}

interface Host {
  readonly instanceId: string;
  readonly imageId: string;
  readonly dir: string;
  readonly rootfs: string;
  readonly controller: AbortController;
  state: 'pending' | 'running' | 'stopped' | 'terminated';
  /** What the host is doing while pending, or why it stopped. */
  detail: string;
  readonly services: Service[];
  /** Every pid seen in the host's chroot, for the record. */
  readonly pids: Set<number>;
  fqdn?: string;
  certificateNotAfter?: string;
  boot: Promise<void>;
}

export interface LocalTestHostOptions {
  readonly store: LocalImageStore;
  /** Days the throwaway certificate is valid; zero or less: expired. */
  readonly certificateDays: number;
  /** How long `status` keeps trying the TLS port before it answers. */
  readonly statusWaitMs?: number;
}

/** The record of a terminated host, kept with the run's logs. */
export interface TestHostRecord {
  readonly instanceId: string;
  readonly imageId: string;
  readonly namespace: string;
  readonly address: string;
  readonly pids: number[];
  readonly services: { unit: string; pid: number; exit?: string }[];
  readonly leftBehind: string[];
}

const ProfileFactsSchema = z.object({ sbc: z.object({ fqdn: z.string() }) });

export class LocalTestHostRunner implements TestHostRunner {
  readonly #run: LocalRun;
  readonly #options: LocalTestHostOptions;
  readonly #hosts = new Map<string, Host>();
  readonly #records: TestHostRecord[] = [];

  constructor(run: LocalRun, options: LocalTestHostOptions) {
    this.#run = run;
    this.#options = options;
  }

  async launch(request: LaunchRequest): Promise<{ instanceId: string }> {
    if (request.runId !== this.#run.runId) {
      throw new InvalidInputError(
        `runId: this test host runner serves run ${this.#run.runId}, ` +
          `not ${request.runId}`,
      );
    }
    this.#run.signal?.throwIfAborted();
    // One host per run, named by it: a retried launch finds the first.
    const instanceId = `host-${runTag(request.runId)}`;
    const existing = this.#hosts.get(instanceId);
    if (existing !== undefined && existing.state !== 'terminated') {
      return { instanceId };
    }

    const dir = join(this.#run.workDir, 'host');
    const host: Host = {
      instanceId,
      imageId: request.imageId,
      dir,
      rootfs: join(dir, 'rootfs'),
      controller: new AbortController(),
      state: 'pending',
      detail: 'unpacking the image',
      services: [],
      pids: new Set(),
      boot: Promise.resolve(),
    };
    this.#hosts.set(instanceId, host);
    host.boot = this.#boot(host).catch((error: unknown) => {
      host.state = 'stopped';
      host.detail = `boot failed: ${describeError(error)}`;
      if (!host.controller.signal.aborted && !this.#run.signal?.aborted) {
        this.#run.progress(`test host: ${host.detail}`);
      }
    });
    return { instanceId };
  }

  async status(instanceId: string): Promise<HostStatus | undefined> {
    const host = this.#hosts.get(instanceId);
    if (host === undefined) {
      return undefined;
    }
    const waitMs = this.#options.statusWaitMs ?? 2000;
    if (host.state === 'pending') {
      // Unpacking takes seconds: wait for the boot rather than answer
      // "pending" to a wait loop that counts its checks.
      await within(host.boot, waitMs);
    }
    if (host.state !== 'running') {
      return {
        instanceId,
        state: host.state,
        reachable: false,
        detail: host.detail,
      };
    }

    const exited = host.services.find((s) => s.outcome.exit !== undefined);
    if (exited !== undefined) {
      host.state = 'stopped';
      host.detail =
        `${exited.unit} exited (${exited.outcome.exit}): ` +
        (await tail(exited.logFile, 6));
      return {
        instanceId,
        state: 'stopped',
        reachable: false,
        detail: host.detail,
      };
    }

    const address = this.#run.network.guestAddress;
    const reachable = await waitUntil(
      () => tlsAnswers(address, DEFAULT_PORTS.tls, host.fqdn),
      { timeoutMs: waitMs, intervalMs: 100 },
    );
    return {
      instanceId,
      state: 'running',
      reachable,
      address,
      detail: reachable
        ? `TLS answers on ${address}:${DEFAULT_PORTS.tls}`
        : `no TLS handshake on ${address}:${DEFAULT_PORTS.tls} yet`,
    };
  }

  async terminate(instanceId: string): Promise<DeleteOutcome> {
    const host = this.#hosts.get(instanceId);
    if (host === undefined || host.state === 'terminated') {
      return 'already-gone';
    }
    host.controller.abort(new Error(`test host ${instanceId} terminated`));
    await host.boot;

    const leftBehind = await this.#teardown(host);
    host.state = 'terminated';
    host.detail = 'terminated';
    const record: TestHostRecord = {
      instanceId,
      imageId: host.imageId,
      namespace: this.#run.network.namespace,
      address: this.#run.network.guestAddress,
      pids: [...host.pids].sort((a, b) => a - b),
      services: host.services.map((s) => ({
        unit: s.unit,
        pid: s.pid,
        exit: s.outcome.exit,
      })),
      leftBehind,
    };
    this.#records.push(record);
    await writeJsonFile(join(this.#run.recordDir, 'test-host.json'), record);
    if (leftBehind.length > 0) {
      throw new TestInstanceError(
        `test host ${instanceId} left behind: ${leftBehind.join('; ')}`,
        { data: { instanceId, leftBehind } },
      );
    }
    this.#run.progress(
      `test host: terminated (${record.pids.length} processes ended, ` +
        `${this.#run.network.namespace} removed)`,
    );
    return 'deleted';
  }

  /** Terminates every host not terminated yet; never throws. */
  async terminateAll(): Promise<string[]> {
    const leftBehind: string[] = [];
    for (const host of this.#hosts.values()) {
      try {
        await this.terminate(host.instanceId);
      } catch (error) {
        leftBehind.push(describeError(error));
      }
    }
    return leftBehind;
  }

  /** The records of the hosts terminated so far. */
  records(): TestHostRecord[] {
    return [...this.#records];
  }

  async #boot(host: Host): Promise<void> {
    // Terminated on its own, or with the whole run when it is interrupted.
    const runSignal = this.#run.signal;
    const signal =
      runSignal === undefined
        ? host.controller.signal
        : AbortSignal.any([host.controller.signal, runSignal]);
    const network = this.#run.network;
    const say = (line: string) => {
      host.detail = line;
      this.#run.progress(`test host: ${line}`);
    };

    const snapshot = await this.#snapshotFile(host.imageId);
    await mkdir(host.rootfs, { recursive: true });
    await command(
      'tar',
      ['--numeric-owner', '--xattrs', '-xpf', snapshot, '-C', host.rootfs],
      { signal },
    );
    host.fqdn = await profileFqdn(host.rootfs);
    say(`unpacked ${host.imageId} for ${host.fqdn}`);

    await this.#installCertificate(host, signal);
    await writeFile(
      join(host.rootfs, 'etc/sbc-ami/addresses.env'),
      `SBC_PRIVATE_IP=${network.guestAddress}\n` +
        `SBC_PUBLIC_IP=${network.guestAddress}\n`,
      { mode: 0o644 },
    );

    signal.throwIfAborted();
    await createNetwork(network, signal);
    say(
      `network namespace ${network.namespace}, ${network.guestAddress}/30 ` +
        `(this side ${network.hostAddress})`,
    );
    await command(
      'ip',
      [
        'netns',
        'exec',
        network.namespace,
        'nft',
        '-f',
        join(host.rootfs, 'etc/nftables.conf'),
      ],
      { signal },
    );
    say("the image's nftables ruleset is applied");

    for (const service of SERVICES) {
      signal.throwIfAborted();
      const started = await this.#startService(host, service, signal);
      host.services.push(started);
      host.pids.add(started.pid);
      say(`${service.unit} started, pid ${started.pid}`);
    }
    host.state = 'running';
    host.detail = 'services started';
  }

  async #snapshotFile(imageId: string): Promise<string> {
    const image = await this.#options.store.describeImage(imageId);
    if (image === undefined || image.state !== 'available') {
      throw new TestInstanceError(
        `image ${imageId} is ${image?.state ?? 'not registered'}`,
      );
    }
    const snapshotId = image.blockDevices[0]?.snapshotId;
    if (snapshotId === undefined) {
      throw new TestInstanceError(`image ${imageId} has no snapshot`);
    }
    return join(this.#options.store.snapshotDir(snapshotId), SNAPSHOT_FILE);
  }

  /** Where the image's tls.cfg expects them, with the modes first boot gives. */
  async #installCertificate(host: Host, signal: AbortSignal): Promise<void> {
    const caFile = testHostCaFile(this.#run.workDir);
    const issued = await issueThrowawayCertificate({
      dir: join(caFile, '..'),
      fqdn: host.fqdn as string,
      days: this.#options.certificateDays,
      signal,
    });
    host.certificateNotAfter = issued.notAfter.toISOString();

    const tls = await serverTlsFiles(host.rootfs);
    const group = (await accountIds(host.rootfs, 'kamailio', 'kamailio')).gid;
    const certificate = join(host.rootfs, tls.certificate);
    const privateKey = join(host.rootfs, tls.privateKey);
    await copyFile(issued.certificateFile, certificate);
    await chown(certificate, 0, 0);
    await chmod(certificate, 0o644);
    await copyFile(issued.privateKeyFile, privateKey);
    await chown(privateKey, 0, group);
    await chmod(privateKey, 0o640);
    this.#run.progress(
      `test host: throwaway certificate for ${host.fqdn}, valid until ` +
        `${host.certificateNotAfter}`,
    );
  }

  async #startService(
    host: Host,
    service: (typeof SERVICES)[number],
    signal: AbortSignal,
  ): Promise<Service> {
    const unit = await readServiceUnit(host.rootfs, service.unit);
    const ids = await accountIds(host.rootfs, unit.user, unit.group);
    for (const dir of unit.runtimeDirectories) {
      const path = join(host.rootfs, 'run', dir);
      await mkdir(path, { recursive: true });
      await chown(path, ids.uid, ids.gid);
      await chmod(path, unit.runtimeDirectoryMode);
    }
    const env = { ...unit.environment, PATH };
    const argv = (privileged: boolean, words: readonly string[]) => [
      'netns',
      'exec',
      this.#run.network.namespace,
      'sh',
      '-c',
      LAUNCHER,
      'sbc-ami-launch',
      host.rootfs,
      ...(privileged || ids.uid === 0
        ? []
        : [`--userspec=${ids.uid}:${ids.gid}`, `--groups=${ids.gid}`]),
      host.rootfs,
      ...words,
    ];

    for (const pre of unit.execStartPre) {
      try {
        await command('ip', argv(pre.privileged, pre.argv), { env, signal });
      } catch (error) {
        if (!pre.ignoreFailure) {
          throw new TestInstanceError(
            `${service.unit}: ExecStartPre ${pre.argv.join(' ')} failed`,
            { cause: error },
          );
        }
      }
    }

    const main = unit.execStart[0];
    if (main === undefined) {
      throw new TestInstanceError(`${service.unit} has no ExecStart`);
    }
    const logFile = join(this.#run.recordDir, service.log);
    await mkdir(this.#run.recordDir, { recursive: true });
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        'ip',
        argv(main.privileged, [...main.argv, ...service.foreground]),
        { env, detached: true, stdio: ['ignore', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    const outcome: { exit?: string } = {};
    const exited = new Promise<void>((done) => {
      child.once('exit', (code, name) => {
        outcome.exit = code === null ? `signal ${name}` : `exit ${code}`;
        done();
      });
      child.once('error', (error) => {
        outcome.exit = `not started: ${error.message}`;
        done();
      });
    });
    if (child.pid === undefined) {
      await exited;
      throw new TestInstanceError(`${service.unit}: ${outcome.exit}`);
    }
    return {
      unit: service.unit,
      pid: child.pid,
      child,
      logFile,
      exited,
      outcome,
    };
  }

  /**
   * Ends the services (SIGTERM to each, then whatever still runs in the
   * chroot by pid, SIGKILL after a grace time), removes the namespace with
   * its veth and ruleset, and the unpacked image. Resolves to what is left.
   */
  async #teardown(host: Host): Promise<string[]> {
    const leftBehind: string[] = [];
    for (const pid of await processesUnder(host.rootfs)) {
      host.pids.add(pid);
    }
    for (const service of [...host.services].reverse()) {
      if (service.outcome.exit === undefined) {
        service.child.kill('SIGTERM');
      }
    }
    await within(Promise.all(host.services.map((s) => s.exited)), 5000);
    const { ended, survivors } = await endProcessesUnder(host.rootfs, 2000);
    for (const pid of ended) {
      host.pids.add(pid);
    }
    for (const service of host.services) {
      if (service.outcome.exit === undefined && isAlive(service.pid)) {
        service.child.kill('SIGKILL');
      }
    }
    await Promise.all(host.services.map((s) => s.exited));
    if (survivors.length > 0) {
      leftBehind.push(
        `processes ${survivors.join(', ')} in ${host.rootfs} (kill -9 them)`,
      );
    }

    const network = await removeNetwork(this.#run.network);
    leftBehind.push(...network.leftBehind);
    try {
      await cleanupRootfs(host.dir);
    } catch (error) {
      leftBehind.push(describeError(error));
    }
    return leftBehind;
  }
}

/** True once a TLS handshake completes (any certificate: only liveness). */
function tlsAnswers(
  host: string,
  port: number,
  servername: string | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      servername,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    const finish = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('secureConnect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** The SBC's FQDN, from the profile copy the image carries. */
async function profileFqdn(rootfs: string): Promise<string> {
  const file = join(rootfs, 'etc/sbc-ami/profile.json');
  const parsed = ProfileFactsSchema.safeParse(
    JSON.parse(await readFile(file, 'utf8')),
  );
  if (!parsed.success) {
    throw new TestInstanceError(`${file} names no sbc.fqdn`);
  }
  return parsed.data.sbc.fqdn;
}

/** The certificate and key paths of tls.cfg's `[server:default]` profile. */
async function serverTlsFiles(
  rootfs: string,
): Promise<{ certificate: string; privateKey: string }> {
  const text = await readFile(join(rootfs, 'etc/kamailio/tls.cfg'), 'utf8');
  let section = '';
  const found: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      section = header[1];
      continue;
    }
    const setting = /^(certificate|private_key)\s*=\s*(\S+)$/.exec(line);
    if (section === 'server:default' && setting?.[1] && setting[2]) {
      found[setting[1]] = setting[2];
    }
  }
  return {
    certificate: found.certificate ?? '/etc/kamailio/tls/sbc.crt',
    privateKey: found.private_key ?? '/etc/kamailio/tls/sbc.key',
  };
}

/** Numeric ids of a user and group of the image (root when unnamed). */
async function accountIds(
  rootfs: string,
  user: string | undefined,
  group: string | undefined,
): Promise<{ uid: number; gid: number }> {
  const lookup = async (file: string, name: string, field: number) => {
    const text = await readFile(join(rootfs, 'etc', file), 'utf8');
    const entry = text
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[0] === name);
    const value = Number(entry?.[field]);
    if (entry === undefined || !Number.isInteger(value)) {
      throw new TestInstanceError(`the image has no ${file} entry ${name}`);
    }
    return value;
  };
  const uid = user === undefined ? 0 : await lookup('passwd', user, 2);
  const gid =
    group !== undefined
      ? await lookup('group', group, 2)
      : user === undefined
        ? 0
        : await lookup('passwd', user, 3);
  return { uid, gid };
}

async function tail(file: string, lines: number): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return `no log at ${file}`;
  }
}
