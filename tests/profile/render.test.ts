import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ProfileError,
  parseProfile,
  RENDERED_FILES,
  type RenderOptions,
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import {
  fileOf,
  loadProfile,
  PROFILE_NAMES,
  rawProfile,
  removeDir,
  tempDir,
} from './support.ts';

const TREE = [
  ['etc/kamailio/kamailio.cfg', 0o644],
  ['etc/kamailio/tls.cfg', 0o644],
  ['etc/kamailio/address.list', 0o644],
  ['etc/rtpengine/rtpengine.conf', 0o644],
  ['etc/nftables.conf', 0o644],
  ['etc/sysctl.d/60-sbc-hardening.conf', 0o644],
  ['etc/chrony/sources.d/amazon-time-sync.sources', 0o644],
  ['etc/ssh/sshd_config.d/60-sbc-hardening.conf', 0o644],
  ['etc/sbc-ami/sbc.env', 0o644],
  ['etc/systemd/system/kamailio.service.d/10-sbc.conf', 0o644],
  ['etc/systemd/system/rtpengine-daemon.service.d/10-sbc.conf', 0o644],
  ['etc/sbc-ami/profile.json', 0o644],
] as const;

/** The lines of a file that are not comments or blank. */
function settings(content: string): string[] {
  return content
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The elements of a named nft set, as rendered. */
function setElements(ruleset: string, name: string): string[] {
  const start = ruleset.indexOf(`set ${name} {`);
  expect(start, `set ${name}`).toBeGreaterThanOrEqual(0);
  const body = ruleset.slice(start, ruleset.indexOf('}', start));
  const elements = body.split('elements = {')[1];
  if (elements === undefined) {
    return [];
  }
  return elements
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function env(content: string): Record<string, string> {
  return Object.fromEntries(
    settings(content).map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)];
    }),
  );
}

describe('renderProfile', () => {
  it.each(PROFILE_NAMES)('renders the whole tree for %s', (name) => {
    // Act
    const files = renderProfile(loadProfile(name));

    // Assess
    expect(files.map((file) => [file.path, file.mode])).toEqual(TREE);
    for (const file of files) {
      expect(file.content.endsWith('\n'), file.path).toBe(true);
      // Every value came from the context: nothing left unrendered.
      expect(file.content, file.path).not.toMatch(/\{\{|\{%|undefined/);
      expect(file.content, file.path).not.toMatch(/PRIVATE KEY/);
    }
  });

  it('lists the rendered paths in RENDERED_FILES', () => {
    expect(RENDERED_FILES.map((file) => file.path)).toEqual(
      TREE.slice(0, -1).map(([path]) => path),
    );
  });

  describe('kamailio.cfg', () => {
    it('takes the addresses from the environment and listens on three transports', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('example')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      expect(cfg).toContain('#!defenv SBC_PRIVATE_IP\n');
      expect(cfg).toContain('#!defenv SBC_PUBLIC_IP\n');
      expect(settings(cfg)).toEqual(
        expect.arrayContaining([
          'listen=udp:SBC_PRIVATE_IP:5060 advertise SBC_PUBLIC_IP:5060',
          'listen=tcp:SBC_PRIVATE_IP:5060 advertise SBC_PUBLIC_IP:5060',
          'listen=tls:SBC_PRIVATE_IP:5061 advertise SBC_PUBLIC_IP:5061',
          'alias="sbc.example.com"',
          'auto_aliases=no',
        ]),
      );
    });

    it('loads tls.so before every other module', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('example')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      const modules = settings(cfg).filter((line) =>
        line.startsWith('loadmodule'),
      );
      expect(modules[0]).toBe('loadmodule "tls.so"');
      expect(modules).toEqual(
        expect.arrayContaining([
          'loadmodule "permissions.so"',
          'loadmodule "pike.so"',
          'loadmodule "htable.so"',
          'loadmodule "topoh.so"',
          'loadmodule "rtpengine.so"',
        ]),
      );
      expect(cfg).toContain(
        'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")',
      );
    });

    it('answers OPTIONS from strangers only when the profile says so', () => {
      // Act
      const open = fileOf(
        renderProfile(loadProfile('example')),
        'etc/kamailio/kamailio.cfg',
      );
      const closed = fileOf(
        renderProfile(loadProfile('options-closed')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      const ping = (cfg: string) =>
        cfg.slice(cfg.indexOf('route[PING]'), cfg.indexOf('route[GATE]'));
      expect(ping(open)).not.toContain('if ($var(grp) == 0)');
      expect(ping(closed)).toMatch(/if \(\$var\(grp\) == 0\) \{\s+exit;/);
      for (const cfg of [open, closed]) {
        expect(ping(cfg)).toContain('$rU != $null || !(uri == myself)');
        expect(ping(cfg)).toContain('sl_send_reply("200", "OK");');
      }
    });

    it('offers only the profile suites toward Genesys, SRTP with SDES', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('wide-port-range')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      const toGenesys = /#!define MEDIA_TO_GENESYS "([^"]+)"/.exec(cfg)?.[1];
      const flags = toGenesys?.split(' ') ?? [];
      expect(flags).toEqual(
        expect.arrayContaining(['RTP/SAVP', 'DTLS=off', 'ICE=remove']),
      );
      expect(flags).not.toContain('SDES-no-AES_256_CM_HMAC_SHA1_80');
      expect(flags).not.toContain('SDES-no-AES_CM_128_HMAC_SHA1_80');
      expect(flags).toEqual(
        expect.arrayContaining([
          'SDES-no-AES_CM_128_HMAC_SHA1_32',
          'SDES-no-AEAD_AES_256_GCM',
          'SDES-no-NULL_HMAC_SHA1_80',
          'SDES-no-F8_128_HMAC_SHA1_80',
        ]),
      );
      expect(cfg).toMatch(/#!define MEDIA_TO_CARRIER_RTP "[^"]*RTP\/AVP"/);
    });

    it('routes to every carrier in profile order, with TLS SNI where needed', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('wide-port-range')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      const primary = cfg.indexOf(
        '$du = "sip:sip.primary.example.net:5061;transport=tls";',
      );
      const backup = cfg.indexOf(
        '$du = "sip:sip.backup.example.net:5080;transport=tcp";',
      );
      expect(primary).toBeGreaterThan(0);
      expect(backup).toBeGreaterThan(primary);
      expect(cfg).toContain(
        '$xavp(tls=>server_name) = "sip.primary.example.net";',
      );
      expect(cfg).toContain('if ($avp(carrier) < 2) {');
      expect(cfg).toContain(
        '$du = "sip:trunk.byoc.example.com:5061;transport=tls";',
      );
    });

    it('puts an IPv6 carrier in brackets in its URIs', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('ipv6-peers')),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      expect(cfg).toContain(
        '$du = "sip:[2001:db8:20::10]:5060;transport=udp";',
      );
      expect(cfg).toContain(
        '$du = "sip:trunk-v6.byoc.example.com:5060;transport=tcp";',
      );
    });

    it('uses the ports and folders given in the options', () => {
      // Act
      const cfg = fileOf(
        renderProfile(loadProfile('example'), {
          sipPorts: { sip: 15060, tls: 15061 },
          kamailioDir: '/tmp/k',
          runDir: '/tmp/run',
          rtpengineNgPort: 12223,
        }),
        'etc/kamailio/kamailio.cfg',
      );

      // Assess
      expect(cfg).toContain(
        'listen=tls:SBC_PRIVATE_IP:15061 advertise SBC_PUBLIC_IP:15061',
      );
      expect(cfg).toContain('modparam("tls", "config", "/tmp/k/tls.cfg")');
      expect(cfg).toContain(
        'modparam("permissions", "address_file", "/tmp/k/address.list")',
      );
      expect(cfg).toContain('"unixs:/tmp/run/kamailio_ctl"');
      expect(cfg).toContain('"udp:127.0.0.1:12223"');
    });
  });

  describe('tls.cfg', () => {
    it('serves TLS 1.2+ with RSA suites and asks no client certificate', () => {
      // Act
      const tls = fileOf(
        renderProfile(loadProfile('example')),
        'etc/kamailio/tls.cfg',
      );

      // Assess
      const server = settings(tls.slice(0, tls.indexOf('[client:default]')));
      expect(server).toEqual([
        '[server:default]',
        'method = TLSv1.2+',
        'verify_certificate = no',
        'require_certificate = no',
        'certificate = /etc/kamailio/tls/sbc.crt',
        'private_key = /etc/kamailio/tls/sbc.key',
        'cipher_list = ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:' +
          'AES256-GCM-SHA384:AES128-GCM-SHA256',
      ]);
      const client = settings(tls.slice(tls.indexOf('[client:default]')));
      expect(client).toEqual(
        expect.arrayContaining([
          'method = TLSv1.2+',
          'verify_certificate = yes',
          'ca_list = /etc/ssl/certs/ca-certificates.crt',
        ]),
      );
    });

    it('points at the certificate folder given in the options', () => {
      // Act
      const tls = fileOf(
        renderProfile(loadProfile('example'), { tlsDir: '/tmp/certs' }),
        'etc/kamailio/tls.cfg',
      );

      // Assess
      expect(settings(tls)).toEqual(
        expect.arrayContaining([
          'certificate = /tmp/certs/sbc.crt',
          'private_key = /tmp/certs/sbc.key',
        ]),
      );
    });
  });

  describe('address.list', () => {
    it('puts Genesys in group 1, carriers in 2, health checks in 3', () => {
      // Act
      const list = fileOf(
        renderProfile(loadProfile('example'), {
          smokeTestSources: ['198.18.0.1/32'],
        }),
        'etc/kamailio/address.list',
      );

      // Assess
      expect(settings(list)).toEqual([
        '1 192.0.2.16 28 0 genesys',
        '1 192.0.2.48 28 0 genesys',
        '2 198.51.100.10 32 0 carrier-a',
        '2 198.51.100.11 32 0 carrier-a',
        '3 10.0.0.0 16 0 health-check',
        '3 198.18.0.1 32 0 smoke-test',
      ]);
    });

    it('writes IPv6 sources in brackets with their prefix', () => {
      // Act
      const list = fileOf(
        renderProfile(loadProfile('ipv6-peers')),
        'etc/kamailio/address.list',
      );

      // Assess
      expect(settings(list)).toEqual([
        '1 [2001:db8:10::] 48 0 genesys',
        '1 192.0.2.16 28 0 genesys',
        '2 [2001:db8:20::10] 128 0 carrier-v6',
        '2 [2001:db8:20::11] 128 0 carrier-v6',
        '3 [fd00:ec2::] 64 0 health-check',
      ]);
    });

    it('has a single Genesys peer as a host entry', () => {
      // Act
      const list = fileOf(
        renderProfile(loadProfile('one-peer')),
        'etc/kamailio/address.list',
      );

      // Assess
      expect(settings(list)).toEqual([
        '1 192.0.2.20 32 0 genesys',
        '2 198.51.100.30 32 0 only',
      ]);
    });
  });

  describe('nftables.conf', () => {
    it('admits SIP per transport from the peers that use it', () => {
      // Act
      const ruleset = fileOf(
        renderProfile(loadProfile('example'), {
          smokeTestSources: ['198.18.0.1/32'],
        }),
        'etc/nftables.conf',
      );

      // Assess
      expect(setElements(ruleset, 'sip_tls_v4')).toEqual([
        '192.0.2.16/28',
        '192.0.2.48/28',
        '10.0.0.0/16',
        '198.18.0.1/32',
      ]);
      expect(setElements(ruleset, 'sip_udp_v4')).toEqual([
        '198.51.100.10/32',
        '198.51.100.11/32',
        '10.0.0.0/16',
        '198.18.0.1/32',
      ]);
      expect(setElements(ruleset, 'sip_tcp_v4')).toEqual([
        '10.0.0.0/16',
        '198.18.0.1/32',
      ]);
      expect(settings(ruleset)).toEqual(
        expect.arrayContaining([
          'type filter hook input priority filter; policy drop;',
          'type filter hook forward priority filter; policy drop;',
          'iif "lo" accept',
          'ct state established,related accept',
          'ip saddr @sip_udp_v4 udp dport 5060 accept',
          'ip saddr @sip_tcp_v4 tcp dport 5060 accept',
          'ip saddr @sip_tls_v4 tcp dport 5061 accept',
          'ip saddr @media_v4 udp dport 30000-40000 accept',
        ]),
      );
      expect(ruleset.match(/^table /gm)).toEqual(['table ']);
    });

    it('opens RTP to the Genesys media CIDRs and the carriers', () => {
      // Act
      const ruleset = fileOf(
        renderProfile(loadProfile('example')),
        'etc/nftables.conf',
      );

      // Assess
      expect(setElements(ruleset, 'media_v4')).toEqual([
        '52.129.96.0/20',
        '169.150.104.0/21',
        '167.234.48.0/20',
        '136.245.64.0/18',
        '198.51.100.0/24',
      ]);
    });

    it('keeps SSH closed without an admin CIDR', () => {
      // Act
      const ruleset = fileOf(
        renderProfile(loadProfile('example')),
        'etc/nftables.conf',
      );

      // Assess
      expect(ruleset).not.toMatch(/dport 22 accept/);
      expect(setElements(ruleset, 'ssh_v4')).toEqual([]);
    });

    it('opens SSH to the admin CIDRs of both families', () => {
      // Act
      const ruleset = fileOf(
        renderProfile(loadProfile('ipv6-peers')),
        'etc/nftables.conf',
      );

      // Assess
      expect(setElements(ruleset, 'ssh_v4')).toEqual(['203.0.113.0/28']);
      expect(setElements(ruleset, 'ssh_v6')).toEqual(['2001:db8:99::/64']);
      expect(settings(ruleset)).toEqual(
        expect.arrayContaining([
          'ip saddr @ssh_v4 tcp dport 22 accept',
          'ip6 saddr @ssh_v6 tcp dport 22 accept',
        ]),
      );
      expect(setElements(ruleset, 'sip_tcp_v6')).toEqual([
        '2001:db8:10::/48',
        'fd00:ec2::/64',
      ]);
      expect(setElements(ruleset, 'sip_udp_v6')).toEqual([
        '2001:db8:20::10/128',
        '2001:db8:20::11/128',
        'fd00:ec2::/64',
      ]);
      expect(setElements(ruleset, 'media_v6')).toEqual([
        '2001:db8:11::/48',
        '2001:db8:20::10/128',
        '2001:db8:20::11/128',
      ]);
    });

    it('opens the whole RTP range, which never holds a port of the SBC', () => {
      // Act
      const ruleset = fileOf(
        renderProfile(loadProfile('wide-port-range')),
        'etc/nftables.conf',
      );

      // Assess
      expect(settings(ruleset)).toEqual(
        expect.arrayContaining([
          'ip saddr @media_v4 udp dport 5062-65535 accept',
          'ip6 saddr @media_v6 udp dport 5062-65535 accept',
        ]),
      );
      expect(setElements(ruleset, 'sip_tls_v4')).toEqual([
        '192.0.2.0/27',
        '198.51.100.0/28',
      ]);
      expect(setElements(ruleset, 'sip_tcp_v4')).toEqual(['203.0.113.64/27']);
    });
  });

  describe('rtpengine.conf', () => {
    it('runs userspace only, ng on loopback, the profile port range', () => {
      // Act
      const conf = fileOf(
        renderProfile(loadProfile('wide-port-range')),
        'etc/rtpengine/rtpengine.conf',
      );

      // Assess
      expect(settings(conf)).toEqual(
        expect.arrayContaining([
          '[rtpengine]',
          'table = -1',
          'listen-ng = 127.0.0.1:2223',
          'listen-cli = 127.0.0.1:2224',
          'port-min = 5062',
          'port-max = 65535',
        ]),
      );
      expect(settings(conf).some((line) => line.startsWith('interface'))).toBe(
        false,
      );
    });
  });

  describe('systemd drop-ins', () => {
    it('give both services the first-boot addresses', () => {
      // Act
      const files = renderProfile(loadProfile('example'));
      const kamailio = fileOf(
        files,
        'etc/systemd/system/kamailio.service.d/10-sbc.conf',
      );
      const rtpengine = fileOf(
        files,
        'etc/systemd/system/rtpengine-daemon.service.d/10-sbc.conf',
      );

      // Assess
      expect(settings(kamailio)).toContain(
        'EnvironmentFile=/etc/sbc-ami/addresses.env',
      );
      expect(settings(rtpengine)).toEqual(
        expect.arrayContaining([
          'EnvironmentFile=/etc/sbc-ami/addresses.env',
          'ExecStartPre=',
          'ExecStopPost=',
          'ExecStart=',
        ]),
      );
      expect(settings(rtpengine).at(-1)).toMatch(
        /^ExecStart=\/usr\/bin\/rtpengine .*--config-file \/etc\/rtpengine\/rtpengine\.conf --interface=\$\{SBC_PRIVATE_IP\}!\$\{SBC_PUBLIC_IP\}$/,
      );
    });
  });

  describe('hardening files', () => {
    it('turns forwarding, redirects and source routing off in sysctl', () => {
      // Act
      const sysctl = env(
        fileOf(
          renderProfile(loadProfile('example')),
          'etc/sysctl.d/60-sbc-hardening.conf',
        ).replaceAll(' = ', '='),
      );

      // Assess
      expect(sysctl).toMatchObject({
        'net.ipv4.ip_forward': '0',
        'net.ipv6.conf.all.forwarding': '0',
        'net.ipv4.conf.all.send_redirects': '0',
        'net.ipv4.conf.all.accept_redirects': '0',
        'net.ipv6.conf.all.accept_redirects': '0',
        'net.ipv4.conf.all.accept_source_route': '0',
        'net.ipv4.conf.all.rp_filter': '1',
        'net.ipv4.conf.all.log_martians': '1',
        'net.ipv4.tcp_syncookies': '1',
        'kernel.randomize_va_space': '2',
        'kernel.yama.ptrace_scope': '1',
        'fs.suid_dumpable': '0',
        'kernel.sysrq': '0',
        'fs.protected_hardlinks': '1',
        'fs.protected_symlinks': '1',
      });
      expect(Object.keys(sysctl).some((key) => key.includes('accept_ra'))).toBe(
        false,
      );
      expect(Object.keys(sysctl)).not.toContain('kernel.modules_disabled');
    });

    it('uses the Amazon Time Sync Service as the preferred source', () => {
      // Act
      const chrony = fileOf(
        renderProfile(loadProfile('example')),
        'etc/chrony/sources.d/amazon-time-sync.sources',
      );

      // Assess
      expect(settings(chrony)).toEqual([
        'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4',
      ]);
    });

    it('allows keys only over SSH, without root, forwarding or many tries', () => {
      // Act
      const sshd = settings(
        fileOf(
          renderProfile(loadProfile('example')),
          'etc/ssh/sshd_config.d/60-sbc-hardening.conf',
        ),
      );

      // Assess
      expect(sshd).toEqual(
        expect.arrayContaining([
          'PermitRootLogin no',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'AllowTcpForwarding no',
          'X11Forwarding no',
          'MaxAuthTries 4',
          'LoginGraceTime 30',
        ]),
      );
    });
  });

  describe('sbc.env', () => {
    it('names where the certificate and key come from, never them', () => {
      // Act
      const values = env(
        fileOf(renderProfile(loadProfile('example')), 'etc/sbc-ami/sbc.env'),
      );

      // Assess
      expect(values).toEqual({
        SBC_PROFILE_NAME: 'genesys-byoc-example',
        SBC_FQDN: 'sbc.example.com',
        SBC_CERT_SOURCE: 'secretsmanager',
        SBC_CERT_MIN_DAYS: '21',
        SBC_CERT_ID: 'sbc/genesys-byoc-example/certificate-chain',
        SBC_KEY_ID: 'sbc/genesys-byoc-example/private-key',
        SBC_SSH_ENABLED: 'no',
      });
    });

    it('names the SSM parameters for an SSM profile', () => {
      // Act
      const values = env(
        fileOf(
          renderProfile(loadProfile('wide-port-range')),
          'etc/sbc-ami/sbc.env',
        ),
      );

      // Assess
      expect(values).toMatchObject({
        SBC_CERT_SOURCE: 'ssm',
        SBC_CERT_ID: '/sbc/wide-port-range/certificate-chain',
        SBC_KEY_ID: '/sbc/wide-port-range/private-key',
        SBC_CERT_MIN_DAYS: '30',
      });
      expect(Object.keys(values).filter((key) => key.includes('ACME'))).toEqual(
        [],
      );
    });

    it('is never rendered for an ACME certificate, refused by parsing', () => {
      // Prepare
      const raw = rawProfile('wide-port-range');
      raw.certificate = {
        source: 'acme',
        email: 'noc@example.com',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
      };

      // Act
      const parsing = () => parseProfile(raw, 'wide-port-range.json');

      // Assess
      expect(parsing).toThrow(ProfileError);
      expect(parsing).toThrow(
        'wide-port-range.json: certificate.source: ' +
          'source must be one of secretsmanager, ssm',
      );
    });
  });

  describe('profile.json', () => {
    it('is the validated profile with its defaults', () => {
      // Prepare
      const profile = loadProfile('one-peer');

      // Act
      const copy = JSON.parse(
        fileOf(renderProfile(profile), 'etc/sbc-ami/profile.json'),
      );

      // Assess
      expect(copy).toEqual(profile);
      expect(copy.rtp).toEqual({ portMin: 30000, portMax: 40000 });
    });
  });

  describe('options', () => {
    it('refuses a smoke-test source that is not a CIDR', () => {
      // Act
      const rendering = () =>
        renderProfile(loadProfile('example'), {
          smokeTestSources: ['198.18.0.1/33'],
        });

      // Assess
      expect(rendering).toThrow(ProfileError);
      expect(rendering).toThrow(
        'render options: smokeTestSources[0]: not a CIDR',
      );
    });

    it.each([
      {
        source: '198.18.0.1/15',
        message: /has host bits set: write the network 198\.18\.0\.0\/15/,
      },
      {
        source: '0.0.0.0/0',
        message: /would open SIP to the whole IPv4 internet/,
      },
    ])('refuses the smoke-test source $source', ({ source, message }) => {
      // Act
      const rendering = () =>
        renderProfile(loadProfile('example'), { smokeTestSources: [source] });

      // Assess
      expect(rendering).toThrow(ProfileError);
      expect(rendering).toThrow(message);
    });

    const PORT_CLASHES: Array<{
      name: string;
      options: RenderOptions;
      line: string;
    }> = [
      {
        name: 'a SIP port inside the RTP range',
        options: { sipPorts: { sip: 35000, tls: 15061 } },
        line:
          'sipPorts.sip: 35000 (SIP over UDP and TCP) is inside ' +
          "the profile's RTP range 30000-40000",
      },
      {
        name: 'a TLS port inside the RTP range',
        options: { sipPorts: { sip: 15060, tls: 30000 } },
        line:
          'sipPorts.tls: 30000 (SIP over TLS) is inside ' +
          "the profile's RTP range 30000-40000",
      },
      {
        name: "rtpengine's CLI port at the start of the RTP range",
        options: { rtpengineNgPort: 29999 },
        line:
          "rtpengineNgPort: 30000 (rtpengine's CLI) is inside " +
          "the profile's RTP range 30000-40000",
      },
      {
        name: 'the TLS port equal to the SIP port',
        options: { sipPorts: { sip: 15060, tls: 15060 } },
        line:
          'sipPorts.tls: 15060 (SIP over TLS) is already the port of ' +
          'SIP over UDP and TCP',
      },
      {
        name: "rtpengine's ng port on the SIP port",
        options: { rtpengineNgPort: 5060 },
        line:
          "rtpengineNgPort: 5060 (rtpengine's ng control) is already the " +
          'port of SIP over UDP and TCP',
      },
    ];

    it.each(PORT_CLASHES)('refuses $name', ({ options, line }) => {
      // Act
      let error: unknown;
      try {
        renderProfile(loadProfile('example'), options);
      } catch (caught) {
        error = caught;
      }

      // Assess
      expect(error).toBeInstanceOf(ProfileError);
      expect((error as ProfileError).message.split('\n')).toContain(
        `render options: ${line}`,
      );
    });

    it('refuses a smoke-test source inside a peer group', () => {
      expect(() =>
        renderProfile(loadProfile('example'), {
          smokeTestSources: ['198.51.100.10'],
        }),
      ).toThrow(
        /smokeTestSources\[0\]: overlaps 198\.51\.100\.10\/32 of carrier/,
      );
    });

    it('refuses a relative certificate folder', () => {
      expect(() =>
        renderProfile(loadProfile('example'), { tlsDir: 'tls' }),
      ).toThrow(/tlsDir: not an absolute path/);
    });
  });
});

describe('writeRenderedTree', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('tree');
  });

  afterAll(async () => {
    await removeDir(dir);
  });

  it('writes every file with its mode, whatever the umask', async () => {
    // Prepare
    const files = renderProfile(loadProfile('example'));
    const umask = process.umask(0o077);

    // Act
    try {
      await writeRenderedTree(dir, files);
    } finally {
      process.umask(umask);
    }

    // Assess
    for (const file of files) {
      const path = join(dir, file.path);
      expect((await stat(path)).mode & 0o777, file.path).toBe(file.mode);
      expect(await readFile(path, 'utf8')).toBe(file.content);
    }
  });

  it('refuses a path that leaves the folder', async () => {
    // Act
    const writing = writeRenderedTree(dir, [
      { path: '../escape.conf', content: 'x\n', mode: 0o644 },
    ]);

    // Assess
    await expect(writing).rejects.toThrow(/refusing to write outside/);
  });
});
