import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatCidr,
  GENESYS_MEDIA_CIDRS,
  hasHostBits,
  networkOf,
  ProfileError,
  ProfileReadError,
  parseCidr,
  parseProfile,
  profileDigest,
  profileJsonSchema,
  readProfileFile,
} from '../../functions/lib/profile/index.ts';
import { readSchemaFile } from '../../scripts/gen-profile-schema.ts';
import {
  EXAMPLE_PROFILE,
  loadProfile,
  PROFILE_NAMES,
  rawProfile,
  removeDir,
  tempDir,
} from './support.ts';

// biome-ignore lint/suspicious/noExplicitAny: the tests reshape profiles into invalid forms on purpose, which no profile type allows
type Raw = Record<string, any>;

/** The example profile with one change applied. */
function exampleWith(change: (profile: Raw) => void): Raw {
  const profile = rawProfile('example') as Raw;
  change(profile);
  return profile;
}

/** The problems parseProfile reports, as `path: message` lines. */
function problemsOf(json: unknown): string[] {
  try {
    parseProfile(json, 'profile.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ProfileError);
    return (error as ProfileError).problems.map(
      (p) => `${p.path}: ${p.message}`,
    );
  }
  throw new Error('the profile was accepted');
}

const PEM_KEY =
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';

const INVALID: Array<{
  name: string;
  change: (profile: Raw) => void;
  path: string;
  message: RegExp;
}> = [
  {
    name: 'a signaling peer that is not a CIDR',
    change: (p) => {
      p.genesys.signalingPeers[1] = '192.0.2.300/28';
    },
    path: 'genesys.signalingPeers[1]',
    message: /not a CIDR/,
  },
  {
    name: 'a prefix longer than the family allows',
    change: (p) => {
      p.genesys.mediaCidrs = ['52.129.96.0/33'];
    },
    path: 'genesys.mediaCidrs[0]',
    message: /not a CIDR/,
  },
  {
    name: 'an IPv6 prefix past 128',
    change: (p) => {
      p.carriers[0].signalingPeers = ['2001:db8::/129'];
    },
    path: 'carriers[0].signalingPeers[0]',
    message: /not a CIDR/,
  },
  {
    name: 'an IPv6 address with a zone id',
    change: (p) => {
      p.sip.healthCheckSources = ['fe80::1%eth0'];
    },
    path: 'sip.healthCheckSources[0]',
    message: /not a CIDR/,
  },
  {
    name: 'a misspelt key',
    change: (p) => {
      p.genesys.signallingPeers = p.genesys.signalingPeers;
    },
    path: 'genesys.signallingPeers',
    message: /unknown field/,
  },
  {
    name: 'an unknown top-level key',
    change: (p) => {
      p.firewall = {};
    },
    path: 'firewall',
    message: /unknown field/,
  },
  {
    name: 'a name with capitals',
    change: (p) => {
      p.name = 'Genesys_BYOC';
    },
    path: 'name',
    message: /a-z, 0-9/,
  },
  {
    name: 'a name ending with a hyphen',
    change: (p) => {
      p.name = 'genesys-';
    },
    path: 'name',
    message: /not starting or ending/,
  },
  {
    name: 'an FQDN that is an address',
    change: (p) => {
      p.sbc.fqdn = '203.0.113.5';
    },
    path: 'sbc.fqdn',
    message: /domain name/,
  },
  {
    name: 'an FQDN of one label',
    change: (p) => {
      p.sbc.fqdn = 'sbc';
    },
    path: 'sbc.fqdn',
    message: /domain name/,
  },
  {
    name: 'no Genesys signaling peer',
    change: (p) => {
      p.genesys.signalingPeers = [];
    },
    path: 'genesys.signalingPeers',
    message: /at least 1|>=1/,
  },
  {
    name: 'a missing termination host',
    change: (p) => {
      delete p.genesys.termination.host;
    },
    path: 'genesys.termination.host',
    message: /^required$/,
  },
  {
    name: 'an unknown transport',
    change: (p) => {
      p.carriers[0].transport = 'sctp';
    },
    path: 'carriers[0].transport',
    message: /udp|tcp|tls/,
  },
  {
    name: 'port 0 for a carrier',
    change: (p) => {
      p.carriers[0].port = 0;
    },
    path: 'carriers[0].port',
    message: /not a port number/,
  },
  {
    name: 'no carrier',
    change: (p) => {
      p.carriers = [];
    },
    path: 'carriers',
    message: /at least 1|>=1/,
  },
  {
    name: 'two carriers with one name',
    change: (p) => {
      p.carriers.push({
        ...p.carriers[0],
        signalingPeers: ['203.0.113.9'],
      });
    },
    path: 'carriers[1].name',
    message: /duplicate carrier name/,
  },
  {
    name: 'a carrier peer inside the Genesys peers',
    change: (p) => {
      p.carriers[0].signalingPeers = ['192.0.2.20'];
    },
    path: 'carriers[0].signalingPeers[0]',
    message: /overlaps 192\.0\.2\.16\/28 of Genesys/,
  },
  {
    name: 'a health-check range holding a carrier peer',
    change: (p) => {
      p.sip.healthCheckSources = ['198.51.100.0/24'];
    },
    path: 'sip.healthCheckSources[0]',
    message: /overlaps 198\.51\.100\.10\/32 of carrier carrier-a/,
  },
  {
    name: 'an unknown certificate source',
    change: (p) => {
      p.certificate.source = 'vault';
    },
    path: 'certificate.source',
    message: /^source must be one of secretsmanager, ssm$/,
  },
  {
    name: 'a secret id with a space',
    change: (p) => {
      p.certificate.keyId = 'sbc key';
    },
    path: 'certificate.keyId',
    message: /Secrets Manager or SSM/,
  },
  {
    name: 'a PEM private key in the key id',
    change: (p) => {
      p.certificate.keyId = PEM_KEY;
    },
    path: 'certificate.keyId',
    message: /PEM private key/,
  },
  {
    name: 'a PEM private key in the description',
    change: (p) => {
      p.description = `the key: ${PEM_KEY}`;
    },
    path: 'description',
    message: /PEM private key/,
  },
  {
    name: 'a private key under a key of its own',
    change: (p) => {
      p.certificate.privateKey = PEM_KEY;
    },
    path: 'certificate.privateKey',
    message: /PEM private key/,
  },
  {
    name: 'key material without its armour',
    change: (p) => {
      p.description = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'.repeat(8);
    },
    path: 'description',
    message: /encoded key material/,
  },
  {
    name: 'a NULL SRTP suite',
    change: (p) => {
      p.srtp.suites = ['NULL_HMAC_SHA1_80'];
    },
    path: 'srtp.suites[0]',
    message: /AES_CM_128_HMAC_SHA1_80/,
  },
  {
    name: 'SRTP suites out of rtpengine order',
    change: (p) => {
      p.srtp.suites = ['AES_CM_128_HMAC_SHA1_80', 'AES_256_CM_HMAC_SHA1_80'];
    },
    path: 'srtp.suites',
    message: /list them as AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_80/,
  },
  {
    name: 'an SRTP suite listed twice',
    change: (p) => {
      p.srtp.suites = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_80'];
    },
    path: 'srtp.suites',
    message: /listed twice/,
  },
  {
    name: 'an odd first RTP port',
    change: (p) => {
      p.rtp.portMin = 30001;
    },
    path: 'rtp.portMin',
    message: /even/,
  },
  {
    name: 'an RTP range upside down',
    change: (p) => {
      p.rtp = { portMin: 40000, portMax: 30000 };
    },
    path: 'rtp.portMax',
    message: /greater than rtp\.portMin \(40000\)/,
  },
  {
    name: 'an RTP range starting below 1024',
    change: (p) => {
      p.rtp.portMin = 512;
    },
    path: 'rtp.portMin',
    message: /1024/,
  },
  {
    name: 'an RTP range past 65535',
    change: (p) => {
      p.rtp.portMax = 70000;
    },
    path: 'rtp.portMax',
    message: /65535/,
  },
  {
    name: 'an admin CIDR that is a host name',
    change: (p) => {
      p.admin.sshCidrs = ['bastion.example.com'];
    },
    path: 'admin.sshCidrs[0]',
    message: /not a CIDR/,
  },
  {
    name: 'OPTIONS-from-unknown given as text',
    change: (p) => {
      p.sip.answerOptionsFromUnknown = 'yes';
    },
    path: 'sip.answerOptionsFromUnknown',
    message: /boolean/,
  },
];

/**
 * Valid JSON of valid types that makes no sense for an SBC: each is refused
 * with a message naming the field and saying what to write instead.
 */
const NONSENSE: Array<{
  name: string;
  change: (profile: Raw) => void;
  path: string;
  /** A pattern, or the whole message word for word. */
  message: RegExp | string;
}> = [
  {
    name: 'an RTP range on the SIP ports',
    change: (p) => {
      p.rtp = { portMin: 5060, portMax: 5061 };
    },
    path: 'rtp',
    message:
      '5060-5061 holds ports the SBC listens on: ' +
      '5060 (SIP over UDP and TCP), 5061 (SIP over TLS); ' +
      'choose a range clear of them, such as the default 30000-40000',
  },
  {
    name: 'an RTP range holding the SIP port',
    change: (p) => {
      p.rtp = { portMin: 5000, portMax: 5060 };
    },
    path: 'rtp',
    message: /holds ports the SBC listens on: 5060 \(SIP over UDP and TCP\);/,
  },
  {
    name: 'an RTP range starting on the TLS port',
    change: (p) => {
      p.rtp = { portMin: 5061, portMax: 6000 };
    },
    path: 'rtp',
    message:
      /^5061-6000 holds ports the SBC listens on: 5061 \(SIP over TLS\);/,
  },
  {
    name: "an RTP range holding rtpengine's control ports",
    change: (p) => {
      p.rtp = { portMin: 2000, portMax: 3000 };
    },
    path: 'rtp',
    message: /2223 \(rtpengine's ng control\), 2224 \(rtpengine's CLI\)/,
  },
  {
    name: 'the whole unprivileged port range for RTP',
    change: (p) => {
      p.rtp = { portMin: 1024, portMax: 65535 };
    },
    path: 'rtp',
    message: /: 2223 .*, 2224 .*, 5060 .*, 5061 \(SIP over TLS\);/,
  },
  {
    name: 'an RTP range too narrow for real calls',
    change: (p) => {
      p.rtp = { portMin: 30000, portMax: 30049 };
    },
    path: 'rtp.portMax',
    message:
      /^30000-30049 is 50 ports, fewer than 100: each call takes four .*portMax 30099 or more/,
  },
  {
    name: 'an RTP range one port short of the minimum',
    change: (p) => {
      p.rtp = { portMin: 30000, portMax: 30098 };
    },
    path: 'rtp.portMax',
    message: /is 99 ports, fewer than 100/,
  },
  {
    name: 'an IPv4 Genesys peer with host bits set',
    change: (p) => {
      p.genesys.signalingPeers[0] = '192.0.2.17/28';
    },
    path: 'genesys.signalingPeers[0]',
    message:
      '192.0.2.17/28 has host bits set: write the network 192.0.2.16/28, ' +
      'or 192.0.2.17 alone for one host',
  },
  {
    name: 'a Genesys media CIDR with host bits set',
    change: (p) => {
      p.genesys.mediaCidrs[0] = '52.129.100.0/20';
    },
    path: 'genesys.mediaCidrs[0]',
    message: /write the network 52\.129\.96\.0\/20/,
  },
  {
    name: 'an IPv6 carrier peer with host bits set',
    change: (p) => {
      p.carriers[0].signalingPeers = ['2001:db8:20::10/64'];
    },
    path: 'carriers[0].signalingPeers[0]',
    message: /write the network 2001:db8:20::\/64, or 2001:db8:20::10 alone/,
  },
  {
    name: 'a carrier media CIDR with host bits past a byte boundary',
    change: (p) => {
      p.carriers[0].mediaCidrs = ['198.51.100.77/27'];
    },
    path: 'carriers[0].mediaCidrs[0]',
    message: /write the network 198\.51\.100\.64\/27/,
  },
  {
    name: 'a health-check source with host bits set',
    change: (p) => {
      p.sip.healthCheckSources = ['10.0.0.1/16'];
    },
    path: 'sip.healthCheckSources[0]',
    message:
      /^10\.0\.0\.1\/16 has host bits set: write the network 10\.0\.0\.0\/16/,
  },
  {
    name: 'an IPv6 admin CIDR with host bits inside a group',
    change: (p) => {
      p.admin.sshCidrs = ['2001:db8:99::ffff/113'];
    },
    path: 'admin.sshCidrs[0]',
    message: /write the network 2001:db8:99::8000\/113/,
  },
  {
    name: 'SSH from every IPv4 address',
    change: (p) => {
      p.admin.sshCidrs = ['0.0.0.0/0'];
    },
    path: 'admin.sshCidrs[0]',
    message:
      '0.0.0.0/0 would open SSH to the whole IPv4 internet (a prefix ' +
      'shorter than /8): list only your admin network, or leave ' +
      'admin.sshCidrs empty and reach the host through AWS Systems ' +
      'Manager Session Manager',
  },
  {
    name: 'SSH from every IPv6 address',
    change: (p) => {
      p.admin.sshCidrs = ['::/0'];
    },
    path: 'admin.sshCidrs[0]',
    message:
      /^::\/0 would open SSH to the whole IPv6 internet .*shorter than \/32/,
  },
  {
    name: 'SSH from an IPv4 block wider than /8',
    change: (p) => {
      p.admin.sshCidrs = ['203.0.113.0/28', '64.0.0.0/7'];
    },
    path: 'admin.sshCidrs[1]',
    message: /^64\.0\.0\.0\/7 would open SSH to 2\^25 addresses/,
  },
  {
    name: 'SSH from an IPv6 block wider than /32',
    change: (p) => {
      p.admin.sshCidrs = ['2001::/16'];
    },
    path: 'admin.sshCidrs[0]',
    message: /would open SSH to 2\^112 addresses .*shorter than \/32/,
  },
  {
    name: 'health checks from every IPv4 address',
    change: (p) => {
      p.sip.healthCheckSources = ['0.0.0.0/0'];
    },
    path: 'sip.healthCheckSources[0]',
    message:
      /^0\.0\.0\.0\/0 would open SIP to the whole IPv4 internet .*monitors' own addresses$/,
  },
  {
    name: 'health checks from every IPv6 address',
    change: (p) => {
      p.sip.healthCheckSources = ['::/0'];
    },
    path: 'sip.healthCheckSources[0]',
    message: /would open SIP to the whole IPv6 internet/,
  },
  {
    name: 'Genesys peers covering half the internet',
    change: (p) => {
      p.genesys.signalingPeers = ['128.0.0.0/1'];
    },
    path: 'genesys.signalingPeers[0]',
    message: /would open SIP to 2\^31 addresses .*signaling addresses$/,
  },
  {
    name: 'carrier media from anywhere',
    change: (p) => {
      p.carriers[0].mediaCidrs = ['0.0.0.0/0'];
    },
    path: 'carriers[0].mediaCidrs[0]',
    message: /would open the RTP ports to the whole IPv4 internet/,
  },
  {
    name: 'a carrier that is the SBC itself',
    change: (p) => {
      p.carriers[0].host = 'sbc.example.com';
    },
    path: 'carriers[0].host',
    message:
      /^sbc\.example\.com is the SBC itself \(sbc\.fqdn\): calls from Genesys would loop/,
  },
  {
    name: 'a Genesys termination host that is the SBC itself',
    change: (p) => {
      p.genesys.termination.host = 'sbc.example.com';
    },
    path: 'genesys.termination.host',
    message:
      /is the SBC itself \(sbc\.fqdn\): calls from the carriers would loop/,
  },
  {
    name: 'a carrier that is the Genesys termination host',
    change: (p) => {
      p.carriers[0].host = 'trunk.byoc.example.com';
    },
    path: 'carriers[0].host',
    message:
      /is the Genesys termination host: calls from Genesys would go back/,
  },
  {
    name: 'a carrier at the Genesys termination address written another way',
    change: (p) => {
      p.genesys.termination.host = '2001:db8::5';
      p.carriers[0].host = '2001:db8:0:0:0:0:0:5';
    },
    path: 'carriers[0].host',
    message: /is the Genesys termination host/,
  },
];

/** Edges of the rules above that are sound and must stay accepted. */
const SOUND: Array<{ name: string; change: (profile: Raw) => void }> = [
  {
    name: 'SSH from a whole /8 and an IPv6 /32',
    change: (p) => {
      p.admin.sshCidrs = ['10.0.0.0/8', '2001:db8::/32'];
    },
  },
  {
    name: 'single hosts written without a prefix',
    change: (p) => {
      p.admin.sshCidrs = ['203.0.113.7', '2001:db8:99::7'];
      p.sip.healthCheckSources = ['10.0.0.1'];
    },
  },
  {
    name: 'host routes written with their full prefix',
    change: (p) => {
      p.admin.sshCidrs = ['203.0.113.7/32', '2001:db8:99::7/128'];
    },
  },
  {
    name: 'an RTP range of exactly 100 ports',
    change: (p) => {
      p.rtp = { portMin: 30000, portMax: 30099 };
    },
  },
  {
    name: "an RTP range ending just below rtpengine's ng port",
    change: (p) => {
      p.rtp = { portMin: 1024, portMax: 2222 };
    },
  },
  {
    name: 'an RTP range starting just above the TLS port',
    change: (p) => {
      p.rtp = { portMin: 5062, portMax: 65535 };
    },
  },
  {
    name: 'a carrier on TLS without a port (5061 is implied)',
    change: (p) => {
      p.carriers[0].transport = 'tls';
      delete p.carriers[0].port;
    },
  },
  {
    name: 'two carriers behind one host on different ports',
    change: (p) => {
      p.carriers.push({
        ...p.carriers[0],
        name: 'carrier-b',
        port: 5080,
        signalingPeers: ['203.0.113.9'],
      });
    },
  },
];

describe('parseProfile', () => {
  it.each(PROFILE_NAMES)('accepts the %s profile', (name) => {
    // Act
    const profile = loadProfile(name);

    // Assess
    expect(profile.name).toMatch(/^[a-z0-9-]+$/);
    expect(profile.carriers.length).toBeGreaterThan(0);
  });

  it('fills in the defaults of a minimal profile', () => {
    // Act
    const profile = loadProfile('one-peer');

    // Assess
    expect(profile.genesys.mediaCidrs).toEqual([...GENESYS_MEDIA_CIDRS]);
    expect(profile.genesys.transport).toBe('tls');
    expect(profile.srtp.suites[0]).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(profile.rtp).toEqual({ portMin: 30000, portMax: 40000 });
    expect(profile.sip).toEqual({
      healthCheckSources: [],
      answerOptionsFromUnknown: false,
    });
    expect(profile.admin.sshCidrs).toEqual([]);
    expect(profile.carriers[0]?.transport).toBe('udp');
    expect(profile.carriers[0]?.media).toBe('rtp');
    expect(profile.certificate.minDaysValid).toBe(21);
  });

  it.each(INVALID)('names the field for $name', ({ change, path, message }) => {
    // Prepare
    const profile = exampleWith(change);

    // Act
    const problems = problemsOf(profile);

    // Assess
    const line = problems.find((problem) => problem.startsWith(`${path}: `));
    expect(line, problems.join('\n')).toBeDefined();
    expect(line?.slice(path.length + 2)).toMatch(message);
  });

  it.each(NONSENSE)(
    'refuses $name, naming the field',
    ({ change, path, message }) => {
      // Prepare
      const profile = exampleWith(change);

      // Act
      const problems = problemsOf(profile);

      // Assess
      const line = problems.find((problem) => problem.startsWith(`${path}: `));
      expect(line, problems.join('\n')).toBeDefined();
      expect(line?.slice(path.length + 2)).toEqual(
        typeof message === 'string' ? message : expect.stringMatching(message),
      );
    },
  );

  it.each(SOUND)('accepts $name', ({ change }) => {
    // Prepare
    const profile = exampleWith(change);

    // Act
    const parsing = () => parseProfile(profile, 'profile.json');

    // Assess
    expect(parsing).not.toThrow();
  });

  it('reports a bad RTP port once, not again as a bad range', () => {
    // Prepare
    const profile = exampleWith((p) => {
      p.rtp = { portMin: 512, portMax: 40000 };
    });

    // Act
    const problems = problemsOf(profile);

    // Assess
    expect(problems).toEqual([
      expect.stringMatching(/^rtp\.portMin: below 1024: /),
    ]);
  });

  it('refuses an ACME certificate, which the image cannot obtain', () => {
    // Prepare
    const profile = exampleWith((p) => {
      p.certificate = {
        source: 'acme',
        email: 'noc@example.com',
        hostedZoneId: 'Z0123456789ABC',
      };
    });

    // Act
    const problems = problemsOf(profile);

    // Assess
    expect(problems).toEqual([
      'certificate.source: source must be one of secretsmanager, ssm',
    ]);
  });

  it('reports every bad field at once, each line naming the file', () => {
    // Prepare
    const profile = exampleWith((p) => {
      p.genesys.signalingPeers[1] = 'nope';
      p.carriers[0].port = 70000;
      p.rtp.portMin = 30001;
      p.extra = true;
    });

    // Act
    let error: unknown;
    try {
      parseProfile(profile, 'profile.json');
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(ProfileError);
    const lines = (error as Error).message.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^profile\.json: genesys\.signalingPeers\[1\]: not a CIDR/,
        ),
        expect.stringMatching(/^profile\.json: carriers\[0\]\.port: /),
        expect.stringMatching(/^profile\.json: rtp\.portMin: must be even/),
        'profile.json: extra: unknown field',
      ]),
    );
    expect(lines.every((line) => line.startsWith('profile.json: '))).toBe(true);
    expect((error as ProfileError).name).toBe('ProfileError');
  });

  it('says what a profile that is not an object is', () => {
    expect(problemsOf([1, 2])).toEqual([
      expect.stringMatching(/^\(profile\): .*expected object/),
    ]);
  });
});

describe('parseCidr', () => {
  it.each([
    ['192.0.2.0/24', { family: 4, address: '192.0.2.0', prefix: 24 }],
    ['198.51.100.7', { family: 4, address: '198.51.100.7', prefix: 32 }],
    ['2001:db8::/32', { family: 6, address: '2001:db8::', prefix: 32 }],
    [
      '::ffff:192.0.2.1',
      { family: 6, address: '::ffff:192.0.2.1', prefix: 128 },
    ],
    ['0.0.0.0/0', { family: 4, address: '0.0.0.0', prefix: 0 }],
  ])('parses %s', (text, expected) => {
    expect(parseCidr(text)).toEqual(expected);
  });

  it.each([
    '192.0.2.0/',
    '192.0.2.0/+8',
    '192.0.2.0/08x',
    '192.0.2/24',
    '300.0.0.0/8',
    '10.0.0.0/8/8',
    'fe80::1%lo/64',
    ' 10.0.0.0/8',
    '',
  ])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });
});

describe('networkOf', () => {
  it.each([
    ['10.0.0.1/16', '10.0.0.0/16', true],
    ['10.0.0.0/16', '10.0.0.0/16', false],
    ['203.0.113.77/27', '203.0.113.64/27', true],
    ['203.0.113.255/31', '203.0.113.254/31', true],
    ['198.51.100.7', '198.51.100.7/32', false],
    ['0.0.0.1/0', '0.0.0.0/0', true],
    ['2001:db8::1/32', '2001:db8::/32', true],
    ['2001:DB8:0:0:0:0:0:0/48', '2001:db8::/48', false],
    ['2001:db8:99::ffff/113', '2001:db8:99::8000/113', true],
    ['fd00:ec2::/64', 'fd00:ec2::/64', false],
    ['::ffff:192.0.2.1/120', '::ffff:c000:200/120', true],
    ['::1', '::1/128', false],
  ])('takes %s to %s (host bits: %s)', (text, network, hostBits) => {
    // Prepare
    const cidr = parseCidr(text);
    if (cidr === undefined) {
      throw new Error(`${text} did not parse`);
    }

    // Act and assess
    expect(formatCidr(networkOf(cidr))).toBe(network);
    expect(hasHostBits(cidr)).toBe(hostBits);
  });
});

describe('readProfileFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('read');
  });

  afterAll(async () => {
    await removeDir(dir);
  });

  it('returns the profile with the sha256 of the bytes as read', async () => {
    // Act
    const { profile, bytes, digest } = await readProfileFile(EXAMPLE_PROFILE);

    // Assess
    expect(profile.name).toBe('genesys-byoc-example');
    expect(digest).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(profileDigest(bytes)).toBe(digest);
  });

  it('throws ProfileReadError naming a file that is not there', async () => {
    // Prepare
    const missing = join(dir, 'missing.json');

    // Act
    const reading = readProfileFile(missing);

    // Assess
    await expect(reading).rejects.toBeInstanceOf(ProfileReadError);
    await expect(reading).rejects.toThrow(`cannot read ${missing} (ENOENT)`);
  });

  it('names the file and the position of a JSON syntax error', async () => {
    // Prepare
    const file = join(dir, 'broken.json');
    await writeFile(file, '{\n  "name": "x",\n}\n');

    // Act
    const reading = readProfileFile(file);

    // Assess
    await expect(reading).rejects.toBeInstanceOf(ProfileError);
    await expect(reading).rejects.toThrow(
      new RegExp(`^${file}: \\(profile\\): not JSON: .*line 3`),
    );
  });

  it('refuses bytes that are not UTF-8', async () => {
    // Prepare
    const file = join(dir, 'latin1.json');
    await writeFile(file, Buffer.from([0x7b, 0xe9, 0x7d]));

    // Act and assess
    await expect(readProfileFile(file)).rejects.toThrow(/not UTF-8 text/);
  });
});

describe('profileJsonSchema', () => {
  it('matches schemas/sip-profile.schema.json', async () => {
    // Act
    const onDisk = await readSchemaFile();

    // Assess
    expect(onDisk, 'run: node scripts/gen-profile-schema.ts').toEqual(
      profileJsonSchema(),
    );
  });

  it('closes every object to unknown keys', () => {
    // Prepare
    const open: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) {
        for (const [i, item] of node.entries()) {
          walk(item, `${at}[${i}]`);
        }
        return;
      }
      if (node === null || typeof node !== 'object') {
        return;
      }
      const schema = node as Record<string, unknown>;
      if (schema.type === 'object' && schema.additionalProperties !== false) {
        open.push(at);
      }
      for (const [key, value] of Object.entries(schema)) {
        walk(value, `${at}.${key}`);
      }
    };

    // Act
    walk(profileJsonSchema(), '$');

    // Assess
    expect(open).toEqual([]);
  });
});
