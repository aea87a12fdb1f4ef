import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { command } from '../../functions/lib/local/command.ts';
import {
  blockAddresses,
  createNetwork,
  listLinks,
  listNamespaces,
  networkNames,
  preferredBlock,
  releaseNetwork,
  removeNetwork,
  reserveNetwork,
} from '../../functions/lib/local/netns.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';

describe('networkNames', () => {
  it('derives names that fit an interface name (15 characters) from the run id', () => {
    // Act
    const names = networkNames('sbc-0123456789abcdef');

    // Assess
    expect(names.namespace).toMatch(/^sbcami-[0-9a-f]{10}$/);
    expect(names.hostLink).toMatch(/^sbh-[0-9a-f]{10}$/);
    expect(names.guestLink).toMatch(/^sbn-[0-9a-f]{10}$/);
    expect(names.hostLink.length).toBeLessThanOrEqual(15);
    expect(networkNames('sbc-0123456789abcdef')).toEqual(names);
    expect(networkNames('sbc-fedcba9876543210').namespace).not.toBe(
      names.namespace,
    );
  });
});

describe('blockAddresses', () => {
  it('gives the first two hosts of the /30, inside 198.18.0.0/15', () => {
    // Act
    const first = blockAddresses(0);
    const last = blockAddresses(32_767);

    // Assess
    expect(first).toEqual({
      hostAddress: '198.18.0.1',
      guestAddress: '198.18.0.2',
    });
    expect(last).toEqual({
      hostAddress: '198.19.255.253',
      guestAddress: '198.19.255.254',
    });
  });

  it('refuses a block outside the range', () => {
    // Act, Assess
    expect(() => blockAddresses(32_768)).toThrow(RangeError);
    expect(() => blockAddresses(-1)).toThrow(RangeError);
  });
});

describe('reserveNetwork', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbc-ami-subnets-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const none = async () => [];

  it('gives two runs two different blocks, and a run its own block again', async () => {
    // Act
    const a = await reserveNetwork('sbc-a', { dir, addressesInUse: none });
    const b = await reserveNetwork('sbc-b', { dir, addressesInUse: none });
    const again = await reserveNetwork('sbc-a', { dir, addressesInUse: none });

    // Assess
    expect(a.block).not.toBe(b.block);
    expect(again.block).toBe(a.block);
    expect(a.block).toBeGreaterThanOrEqual(256);
    expect((await readdir(dir)).sort()).toEqual(
      [`${a.block}.json`, `${b.block}.json`].sort(),
    );
  });

  it('skips a block whose addresses are already on an interface', async () => {
    // Prepare
    const taken = blockAddresses(preferredBlock('sbc-c')).guestAddress;

    // Act
    const network = await reserveNetwork('sbc-c', {
      dir,
      addressesInUse: async () => [taken],
    });

    // Assess
    expect(network.block).not.toBe(preferredBlock('sbc-c'));
    expect(network.guestAddress).not.toBe(taken);
  });

  it('takes over the reservation of a run whose process is gone', async () => {
    // Prepare
    const block = preferredBlock('sbc-d');
    await writeFile(
      join(dir, `${block}.json`),
      JSON.stringify({ runId: 'sbc-dead', pid: 999_999_999 }),
    );

    // Act
    const network = await reserveNetwork('sbc-d', {
      dir,
      addressesInUse: none,
      isAlive: () => false,
    });

    // Assess
    expect(network.block).toBe(block);
    const holder = JSON.parse(
      await readFile(join(dir, `${block}.json`), 'utf8'),
    );
    expect(holder).toEqual({ runId: 'sbc-d', pid: process.pid });
  });

  it('leaves a live run its block and takes the next one', async () => {
    // Prepare
    const block = preferredBlock('sbc-e');
    await writeFile(
      join(dir, `${block}.json`),
      JSON.stringify({ runId: 'sbc-other', pid: process.pid }),
    );

    // Act
    const network = await reserveNetwork('sbc-e', {
      dir,
      addressesInUse: none,
    });

    // Assess
    expect(network.block).not.toBe(block);
  });

  it('releases only the run it is asked for', async () => {
    // Prepare
    const a = await reserveNetwork('sbc-f', { dir, addressesInUse: none });
    const b = await reserveNetwork('sbc-g', { dir, addressesInUse: none });

    // Act
    const released = await releaseNetwork('sbc-f', dir);
    const again = await releaseNetwork('sbc-f', dir);

    // Assess
    expect(released).toBe(true);
    expect(again).toBe(false);
    expect(await readdir(dir)).toEqual([`${b.block}.json`]);
    expect(a.block).not.toBe(b.block);
  });
});

describeWithSystem('removeNetwork', { root: true, tools: [TOOLS.ip] }, () => {
  let dir: string;
  const runId = `sbc-netns-${process.pid}`;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbc-ami-subnets-'));
  });
  afterEach(async () => {
    await removeNetwork(networkNames(runId));
    await rm(dir, { recursive: true, force: true });
  });

  it('reports nothing left behind over 25 create and remove cycles', async () => {
    // Prepare: the kernel removes the veth with the namespace, a moment
    // later; a removal that raced it used to report the veth as left.
    const network = await reserveNetwork(runId, { dir });
    const reports: Array<{ removed: string[]; leftBehind: string[] }> = [];

    // Act
    for (let cycle = 0; cycle < 25; cycle += 1) {
      await createNetwork(network);
      reports.push(await removeNetwork(network));
    }

    // Assess
    expect(reports.flatMap((report) => report.leftBehind)).toEqual([]);
    for (const report of reports) {
      expect(report.removed).toContain(
        `network namespace ${network.namespace}`,
      );
    }
    expect(await listNamespaces()).not.toContain(network.namespace);
    expect(await listLinks()).not.toContain(network.hostLink);
  }, 120_000);

  it('counts a namespace and veth that are already gone as removed', async () => {
    // Prepare: made, then deleted by hand behind its back.
    const network = await reserveNetwork(runId, { dir });
    await createNetwork(network);
    await command('ip', ['netns', 'delete', network.namespace]);

    // Act
    const report = await removeNetwork(network);
    const again = await removeNetwork(network);

    // Assess
    expect(report.leftBehind).toEqual([]);
    expect(again).toEqual({ removed: [], leftBehind: [] });
    expect(await listLinks()).not.toContain(network.hostLink);
  });
});
