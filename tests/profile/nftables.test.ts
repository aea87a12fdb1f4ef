import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  renderProfile,
  type SipProfile,
} from '../../functions/lib/profile/index.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  type Daemon,
  fileOf,
  loadProfile,
  PROFILE_NAMES,
  removeDir,
  run,
  startDaemon,
  tempDir,
} from './support.ts';

/**
 * Two namespaces joined by a veth pair: `sbc` gets the ruleset and a
 * listener, `peer` sends from 198.18.0.0/15 addresses of its own.
 */
const suffix = randomBytes(3).toString('hex');
const SBC_NS = `sbcp-fw-${suffix}`;
const PEER_NS = `sbcp-peer-${suffix}`;
const SBC_IP = '198.19.250.1';
/** The smoke-test source the ruleset admits. */
const ADMITTED_IP = '198.19.250.2';
/** A second address of the peer that no rule names. */
const STRANGER_IP = '198.19.250.3';

const LISTENER = `
const dgram = require('node:dgram');
const net = require('node:net');
const [sip, tls, rtp] = process.argv.slice(1).map(Number);
for (const port of [sip, rtp]) {
  dgram.createSocket('udp4')
    .on('message', (m, r) => console.log('udp ' + port + ' ' + r.address))
    .bind(port, '${SBC_IP}');
}
for (const port of [sip, tls]) {
  net.createServer((s) => { console.log('tcp ' + port + ' ' + s.remoteAddress); s.destroy(); })
    .listen(port, '${SBC_IP}');
}
console.log('ready');
`;

const SENDER = `
const dgram = require('node:dgram');
const net = require('node:net');
const [from, proto, port] = process.argv.slice(1);
if (proto === 'udp') {
  const s = dgram.createSocket('udp4');
  s.bind(0, from, () => s.send('x', Number(port), '${SBC_IP}', () => s.close()));
} else {
  const s = net.connect({ host: '${SBC_IP}', port: Number(port), localAddress: from, timeout: 1500 });
  s.on('connect', () => { console.log('connected'); s.destroy(); });
  s.on('timeout', () => { console.log('timeout'); s.destroy(); });
  s.on('error', (e) => console.log(e.code));
}
`;

async function inNamespace(ns: string, args: string[]): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, ...args]);
  return stdout;
}

describeWithSystem(
  'the rendered nftables ruleset',
  { root: true, tools: [TOOLS.nft, TOOLS.ip] },
  () => {
    let dir: string;
    let listener: Daemon | undefined;
    const created: string[] = [];

    async function writeRuleset(
      name: string,
      profile: SipProfile,
      smokeTestSources: string[] = [],
    ): Promise<string> {
      const path = join(dir, `${name}.nft`);
      const files = renderProfile(profile, {
        smokeTestSources,
        sipPorts: { sip: 5060, tls: 5061 },
      });
      await writeFile(path, fileOf(files, 'etc/nftables.conf'));
      return path;
    }

    /** What the listener saw from `from` after one try on proto/port. */
    async function reach(
      from: string,
      proto: 'udp' | 'tcp',
      port: number,
    ): Promise<boolean> {
      const before = listener?.output() ?? '';
      const said = await inNamespace(PEER_NS, [
        process.execPath,
        '-e',
        SENDER,
        from,
        proto,
        String(port),
      ]);
      // A datagram has no answer: give it time to arrive.
      await new Promise((done) => setTimeout(done, 300));
      const seen = (listener?.output() ?? '').slice(before.length);
      const arrived = seen.includes(`${proto} ${port} ${from}`);
      if (proto === 'tcp') {
        expect(said.trim()).toBe(arrived ? 'connected' : 'timeout');
      }
      return arrived;
    }

    beforeAll(async () => {
      dir = await tempDir('nft');
      for (const ns of [SBC_NS, PEER_NS]) {
        await run('ip', ['netns', 'add', ns]);
        created.push(ns);
      }
      await run('ip', [
        'link',
        'add',
        'veth-sbc',
        'netns',
        SBC_NS,
        'type',
        'veth',
        'peer',
        'name',
        'veth-peer',
        'netns',
        PEER_NS,
      ]);
      await inNamespace(SBC_NS, [
        'ip',
        'addr',
        'add',
        `${SBC_IP}/29`,
        'dev',
        'veth-sbc',
      ]);
      for (const address of [ADMITTED_IP, STRANGER_IP]) {
        await inNamespace(PEER_NS, [
          'ip',
          'addr',
          'add',
          `${address}/29`,
          'dev',
          'veth-peer',
        ]);
      }
      for (const [ns, link] of [
        [SBC_NS, 'veth-sbc'],
        [PEER_NS, 'veth-peer'],
      ] as const) {
        await inNamespace(ns, ['ip', 'link', 'set', link, 'up']);
        await inNamespace(ns, ['ip', 'link', 'set', 'lo', 'up']);
      }
    });

    afterAll(async () => {
      await listener?.stop();
      for (const ns of created) {
        await run('ip', ['netns', 'delete', ns]);
      }
      await removeDir(dir);
    });

    it.each(PROFILE_NAMES)('passes nft -c for %s', async (name) => {
      // Prepare
      const path = await writeRuleset(name, loadProfile(name), [
        '198.18.0.1/32',
      ]);

      // Act
      const result = run('ip', [
        'netns',
        'exec',
        SBC_NS,
        'nft',
        '-c',
        '-f',
        path,
      ]);

      // Assess
      await expect(result).resolves.toBeDefined();
    });

    it('fails nft -c on a broken ruleset (the check can fail)', async () => {
      // Prepare
      const path = join(dir, 'broken.nft');
      await writeFile(
        path,
        'table inet sbc {\n  chain input {\n    tcp dport accept\n  }\n}\n',
      );

      // Act
      const result = run('ip', [
        'netns',
        'exec',
        SBC_NS,
        'nft',
        '-c',
        '-f',
        path,
      ]);

      // Assess
      await expect(result).rejects.toThrow(/syntax error/);
    });

    it('loads into the namespace as one table with the profile sets', async () => {
      // Prepare
      const path = await writeRuleset('ipv6', loadProfile('ipv6-peers'));

      // Act
      await inNamespace(SBC_NS, ['nft', '-f', path]);
      const tables = await inNamespace(SBC_NS, ['nft', 'list', 'tables']);
      const ssh = await inNamespace(SBC_NS, [
        'nft',
        'list',
        'set',
        'inet',
        'sbc',
        'ssh_v6',
      ]);

      // Assess
      expect(tables.trim()).toBe('table inet sbc');
      expect(ssh).toContain('2001:db8:99::/64');
    });

    it('admits SIP from an allowed source and drops strangers and RTP', async () => {
      // Prepare
      listener = startDaemon('ip', [
        'netns',
        'exec',
        SBC_NS,
        process.execPath,
        '-e',
        LISTENER,
        '5060',
        '5061',
        '30000',
      ]);
      const path = await writeRuleset('closed', loadProfile('options-closed'), [
        `${ADMITTED_IP}/32`,
      ]);
      await inNamespace(SBC_NS, ['nft', '-f', path]);
      await expect
        .poll(() => listener?.output() ?? '', { timeout: 5000 })
        .toContain('ready');

      // Act
      const admitted = {
        udp: await reach(ADMITTED_IP, 'udp', 5060),
        tcp: await reach(ADMITTED_IP, 'tcp', 5060),
        tls: await reach(ADMITTED_IP, 'tcp', 5061),
      };
      const stranger = {
        udp: await reach(STRANGER_IP, 'udp', 5060),
        tls: await reach(STRANGER_IP, 'tcp', 5061),
      };
      const rtpFromAdmitted = await reach(ADMITTED_IP, 'udp', 30000);

      // Assess
      expect(admitted).toEqual({ udp: true, tcp: true, tls: true });
      expect(stranger).toEqual({ udp: false, tls: false });
      expect(rtpFromAdmitted).toBe(false);
    });

    it('stops admitting the smoke test once it is not in the profile', async () => {
      // Prepare
      const path = await writeRuleset('none', loadProfile('options-closed'));
      await inNamespace(SBC_NS, ['nft', '-f', path]);

      // Act
      const arrived = await reach(ADMITTED_IP, 'udp', 5060);

      // Assess
      expect(arrived).toBe(false);
    });
  },
);
