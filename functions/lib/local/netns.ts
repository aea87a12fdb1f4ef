/**
 * The local test host's network: a network namespace joined to this
 * machine by a veth pair, one /30 of 198.18.0.0/15 (RFC 2544, benchmarking)
 * per run. Names and the /30 derive from the run id, so a sweeper finds
 * what a crashed run left by name alone; nothing is routed off the machine.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { command, isAlive, waitUntil } from './command.ts';

/** Prefix of every namespace local mode creates (`ip netns list`). */
export const NAMESPACE_PREFIX = 'sbcami-';
/** Prefix of the veth end on this machine's side. */
export const HOST_LINK_PREFIX = 'sbh-';
/** Prefix of the veth end inside the namespace. */
export const GUEST_LINK_PREFIX = 'sbn-';

/** 198.18.0.0/15 as a number, and its size in /30 blocks. */
const POOL_BASE = (198 << 24) | (18 << 16);
const POOL_BLOCKS = 2 ** (32 - 15) / 4;
/**
 * Blocks below this are left to hand-made test namespaces, which tend to
 * take 198.18.0.x: 256 blocks, up to 198.18.3.255.
 */
const FIRST_BLOCK = 256;

/** Reservations of /30 blocks, shared by every local home on the machine. */
export const RESERVATIONS_DIR = '/run/sbc-ami/subnets';

export interface NetworkNames {
  /** `sbcami-` and 10 hex digits of the run id's SHA-256. */
  readonly namespace: string;
  readonly hostLink: string;
  readonly guestLink: string;
}

export interface HostNetwork extends NetworkNames {
  readonly runId: string;
  /** Index of the /30 block in 198.18.0.0/15. */
  readonly block: number;
  /** This machine's end: the smoke test's source. */
  readonly hostAddress: string;
  /** The test host's address, inside the namespace. */
  readonly guestAddress: string;
  readonly prefixLength: 30;
}

/** Short, stable tag of a run for names limited to 15 characters. */
export function runTag(runId: string): string {
  return createHash('sha256').update(runId).digest('hex').slice(0, 10);
}

export function networkNames(runId: string): NetworkNames {
  const tag = runTag(runId);
  return {
    namespace: `${NAMESPACE_PREFIX}${tag}`,
    hostLink: `${HOST_LINK_PREFIX}${tag}`,
    guestLink: `${GUEST_LINK_PREFIX}${tag}`,
  };
}

/** The two usable addresses of block `block`: .1 this side, .2 the host. */
export function blockAddresses(block: number): {
  hostAddress: string;
  guestAddress: string;
} {
  if (!Number.isInteger(block) || block < 0 || block >= POOL_BLOCKS) {
    throw new RangeError(`block ${block} is outside 198.18.0.0/15`);
  }
  const network = POOL_BASE + block * 4;
  return {
    hostAddress: dotted(network + 1),
    guestAddress: dotted(network + 2),
  };
}

function dotted(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/** The first block tried for a run: spread by its id, never below FIRST_BLOCK. */
export function preferredBlock(runId: string): number {
  const hash = createHash('sha256').update(`subnet:${runId}`).digest();
  return FIRST_BLOCK + (hash.readUInt32BE(0) % (POOL_BLOCKS - FIRST_BLOCK));
}

const ReservationSchema = z.object({
  runId: z.string().min(1),
  pid: z.number().int().positive(),
});

export interface ReserveOptions {
  readonly dir?: string;
  /** IPv4 addresses in use on this machine; `ip -4 addr` by default. */
  readonly addressesInUse?: () => Promise<string[]>;
  /** Whether the process holding a reservation still runs. */
  readonly isAlive?: (pid: number) => boolean;
}

/**
 * Reserves a /30 for a run: a file per block, created exclusively, so two
 * runs (of any local home) never share one. A block whose addresses are
 * already on an interface is skipped; a reservation whose process is gone
 * is taken over once nothing uses its addresses. The same run asking again
 * gets its own block back.
 */
export async function reserveNetwork(
  runId: string,
  options: ReserveOptions = {},
): Promise<HostNetwork> {
  const dir = options.dir ?? RESERVATIONS_DIR;
  const alive = options.isAlive ?? isAlive;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const inUse = new Set(await (options.addressesInUse ?? machineAddresses)());

  const existing = await findReservation(dir, runId);
  if (existing !== undefined) {
    return hostNetwork(runId, existing);
  }

  const start = preferredBlock(runId);
  const span = POOL_BLOCKS - FIRST_BLOCK;
  for (let step = 0; step < span; step += 1) {
    const block = FIRST_BLOCK + ((start - FIRST_BLOCK + step) % span);
    const { hostAddress, guestAddress } = blockAddresses(block);
    if (inUse.has(hostAddress) || inUse.has(guestAddress)) {
      continue;
    }
    const file = join(dir, `${block}.json`);
    if (await claim(file, runId)) {
      return hostNetwork(runId, block);
    }
    const holder = await readReservation(file);
    if (holder !== undefined && !alive(holder.pid)) {
      // Its run died without releasing it, and its addresses are free.
      await rm(file, { force: true });
      if (await claim(file, runId)) {
        return hostNetwork(runId, block);
      }
    }
  }
  throw new Error('no free /30 left in 198.18.0.0/15 for the test host');
}

/** Releases the run's reservation, if it holds one. */
export async function releaseNetwork(
  runId: string,
  dir = RESERVATIONS_DIR,
): Promise<boolean> {
  const block = await findReservation(dir, runId);
  if (block === undefined) {
    return false;
  }
  await rm(join(dir, `${block}.json`), { force: true });
  return true;
}

function hostNetwork(runId: string, block: number): HostNetwork {
  return {
    runId,
    block,
    ...networkNames(runId),
    ...blockAddresses(block),
    prefixLength: 30,
  };
}

async function claim(file: string, runId: string): Promise<boolean> {
  try {
    await writeFile(file, JSON.stringify({ runId, pid: process.pid }), {
      flag: 'wx',
    });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      return false;
    }
    throw error;
  }
}

async function readReservation(
  file: string,
): Promise<z.infer<typeof ReservationSchema> | undefined> {
  try {
    const parsed = ReservationSchema.safeParse(
      JSON.parse(await readFile(file, 'utf8')),
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    // removed meanwhile, or half-written by a process that died
    return undefined;
  }
}

async function findReservation(
  dir: string,
  runId: string,
): Promise<number | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const match = /^(\d+)\.json$/.exec(name);
    if (match?.[1] === undefined) {
      continue;
    }
    const holder = await readReservation(join(dir, name));
    if (holder?.runId === runId) {
      return Number(match[1]);
    }
  }
  return undefined;
}

/** Every IPv4 address configured on this machine's interfaces. */
export async function machineAddresses(): Promise<string[]> {
  const text = await command('ip', ['-j', '-4', 'addr', 'show']);
  const links = JSON.parse(text) as Array<{
    addr_info?: Array<{ local?: string }>;
  }>;
  return links.flatMap((link) =>
    (link.addr_info ?? []).flatMap((info) =>
      info.local === undefined ? [] : [info.local],
    ),
  );
}

/**
 * Creates the namespace, the veth pair and the addresses, loopback up
 * inside. A half-made network is left for `removeNetwork`, which the
 * caller runs on failure as on success.
 */
export async function createNetwork(
  network: HostNetwork,
  signal?: AbortSignal,
): Promise<void> {
  const { namespace, hostLink, guestLink } = network;
  const ip = (...args: string[]) => command('ip', args, { signal });
  const cidr = (address: string) => `${address}/${network.prefixLength}`;

  await ip('netns', 'add', namespace);
  await ip(
    'link',
    'add',
    hostLink,
    'type',
    'veth',
    'peer',
    'name',
    guestLink,
    'netns',
    namespace,
  );
  await ip('addr', 'add', cidr(network.hostAddress), 'dev', hostLink);
  await ip('link', 'set', hostLink, 'up');
  await ip(
    '-n',
    namespace,
    'addr',
    'add',
    cidr(network.guestAddress),
    'dev',
    guestLink,
  );
  await ip('-n', namespace, 'link', 'set', guestLink, 'up');
  await ip('-n', namespace, 'link', 'set', 'lo', 'up');
}

/**
 * Deletes the namespace (its end of the veth, its nftables ruleset and
 * every socket in it go with it) and this side's veth end if it is still
 * there. Something already gone counts as removed: the kernel deletes the
 * veth pair with the namespace, a moment later, and another sweep may have
 * been first. Never throws: resolves to what it removed and what is left.
 */
export async function removeNetwork(
  names: NetworkNames,
): Promise<{ removed: string[]; leftBehind: string[] }> {
  const removed: string[] = [];
  const leftBehind: string[] = [];
  const namespace = `network namespace ${names.namespace}`;
  const veth = `veth ${names.hostLink}`;
  try {
    if (await namespaceExists(names.namespace)) {
      await removeUnlessGone(
        () => command('ip', ['netns', 'delete', names.namespace]),
        () => namespaceExists(names.namespace),
      );
      removed.push(namespace);
    }
  } catch (error) {
    leftBehind.push(
      `${namespace} (ip netns delete ${names.namespace}): ` +
        (error as Error).message,
    );
  }

  try {
    // The peer of a deleted namespace's veth goes shortly after it.
    await waitUntil(async () => !(await linkExists(names.hostLink)), {
      timeoutMs: LINK_GONE_MS,
    });
    if (await linkExists(names.hostLink)) {
      await removeUnlessGone(
        () => command('ip', ['link', 'delete', names.hostLink]),
        () => linkExists(names.hostLink),
      );
      removed.push(veth);
    }
  } catch (error) {
    leftBehind.push(
      `${veth} (ip link delete ${names.hostLink}): ${(error as Error).message}`,
    );
  }
  return { removed, leftBehind };
}

/** How long the kernel gets to delete a veth whose peer's namespace went. */
const LINK_GONE_MS = 2000;

/**
 * Runs `remove`; a failure stands only while `exists` still holds (ip says
 * "Cannot find device" for a veth the kernel removed meanwhile).
 */
async function removeUnlessGone(
  remove: () => Promise<unknown>,
  exists: () => Promise<boolean>,
): Promise<void> {
  try {
    await remove();
  } catch (error) {
    if (await exists()) {
      throw error;
    }
  }
}

/** Names of the network namespaces that exist now. */
export async function listNamespaces(): Promise<string[]> {
  const text = await command('ip', ['-j', 'netns', 'list']);
  if (text.trim() === '') {
    return [];
  }
  return (JSON.parse(text) as Array<{ name: string }>).map((ns) => ns.name);
}

export async function namespaceExists(name: string): Promise<boolean> {
  return (await listNamespaces()).includes(name);
}

/** Names of the links in this machine's own namespace. */
export async function listLinks(): Promise<string[]> {
  const text = await command('ip', ['-j', 'link', 'show']);
  return (JSON.parse(text) as Array<{ ifname: string }>).map((l) => l.ifname);
}

export async function linkExists(name: string): Promise<boolean> {
  return (await listLinks()).includes(name);
}
