import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failedChecks } from '../../functions/lib/probe/checks.ts';
import {
  checkNames,
  formatReport,
  GENESYS_CIPHERS,
  type ProbeReport,
  parseClosedPorts,
  runProbe,
  statusMeaning,
} from '../../functions/lib/probe/index.ts';
import { resolveOptions } from '../../functions/lib/probe/options.ts';
import { resolveHost } from '../../functions/lib/probe/resolve.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sbc-ami-probe-options-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseClosedPorts', () => {
  it('reads PORT/PROTO items, spaces and case aside, without duplicates', () => {
    // Act
    const ports = parseClosedPorts(' 22/tcp, 2223/UDP,22/tcp ');

    // Assess
    expect(ports).toEqual([
      { port: 22, proto: 'tcp' },
      { port: 2223, proto: 'udp' },
    ]);
  });

  it('reads an empty text as no ports', () => {
    expect(parseClosedPorts('  ')).toEqual([]);
  });

  it.each([
    ['22/sctp', 'item 1 "22/sctp"'],
    ['22/tcp,,23/tcp', 'item 2 ""'],
    ['22/tcp,0/udp', 'item 2 "0/udp"'],
    ['65536/tcp', 'item 1 "65536/tcp"'],
    ['tcp/22', 'item 1 "tcp/22"'],
  ])('throws naming the bad item of %j', (text, named) => {
    expect(() => parseClosedPorts(text)).toThrow(named);
  });

  it('throws a ProbeOptionsError for the closed field', () => {
    // Act
    const error = (() => {
      try {
        parseClosedPorts('x');
      } catch (caught) {
        return caught;
      }
    })();

    // Assess
    expect(error).toMatchObject({ name: 'ProbeOptionsError', field: 'closed' });
  });
});

describe('resolveOptions', () => {
  it('fills in the defaults of DOMAIN.md', async () => {
    // Act
    const settings = await resolveOptions({ host: '127.0.0.1' });

    // Assess
    expect(settings).toMatchObject({
      host: '127.0.0.1',
      sni: '127.0.0.1',
      udpPort: 5060,
      tcpPort: 5060,
      tlsPort: 5061,
      minDays: 14,
      acceptedStatuses: [200],
      allowedCiphers: [...GENESYS_CIPHERS],
      closed: [],
    });
    expect(['system', 'bundled']).toContain(settings.caSource);
    expect(settings.ca.length).toBeGreaterThan(0);
  });

  it.each([
    [{ host: '' }, 'host'],
    [{ host: 'a b' }, 'host'],
    [{ host: 'h', sni: 'x/y' }, 'sni'],
    [{ host: 'h', udpPort: 0 }, 'udpPort'],
    [{ host: 'h', tcpPort: 70000 }, 'tcpPort'],
    [{ host: 'h', tlsPort: 1.5 }, 'tlsPort'],
    [{ host: 'h', minDays: -1 }, 'minDays'],
    [{ host: 'h', timeoutMs: 0 }, 'timeoutMs'],
    [{ host: 'h', acceptedStatuses: [] }, 'acceptedStatuses'],
    [{ host: 'h', acceptedStatuses: [99] }, 'acceptedStatuses.0'],
    [{ host: 'h', allowedCiphers: ['A B'] }, 'allowedCiphers.0'],
    [{ host: 'h', closed: [{ port: 22, proto: 'sctp' }] }, 'closed.0.proto'],
    [{ host: 'h', closed: [{ port: 5060, proto: 'udp' }] }, 'closed'],
    [{ host: 'h', tlsPorts: 5061 }, 'tlsPorts'],
    [{ host: 'h', closed: [{ port: 1, proto: 'tcp', x: 1 }] }, 'closed.0.x'],
  ])('rejects %j naming %s', async (options, field) => {
    // Act
    const outcome = resolveOptions(options as never);

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'ProbeOptionsError',
      field,
    });
  });

  it('names the CA file that cannot be read', async () => {
    // Prepare
    const missing = join(dir, 'missing.pem');

    // Act
    const outcome = resolveOptions({ host: 'h', caFile: missing });

    // Assess
    await expect(outcome).rejects.toMatchObject({
      field: 'caFile',
      message: expect.stringContaining(`${missing} (ENOENT)`),
    });
  });

  it('names the CA file that holds no certificate', async () => {
    // Prepare
    const file = join(dir, 'empty.pem');
    await writeFile(file, 'not a certificate\n');

    // Act
    const outcome = resolveOptions({ host: 'h', caFile: file });

    // Assess
    await expect(outcome).rejects.toThrow(`${file} holds no PEM certificate`);
  });

  it('names the certificate of a bundle that does not parse', async () => {
    // Prepare
    const file = join(dir, 'broken.pem');
    await writeFile(
      file,
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );

    // Act
    const outcome = resolveOptions({ host: 'h', caFile: file });

    // Assess
    await expect(outcome).rejects.toThrow(`certificate 1 in ${file}`);
  });

  it('names the allowed cipher OpenSSL does not know', async () => {
    // Act
    const outcome = resolveOptions({
      host: 'h',
      allowedCiphers: ['ECDHE-RSA-AES128-GCM-SHA256', 'NOPE'],
    });

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'ProbeOptionsError',
      field: 'allowedCiphers.1',
      problem: expect.stringMatching(/^"NOPE" is not a TLS cipher suite/),
    });
  });

  it('takes cipher names in any case, in the spelling sessions report', async () => {
    // Act
    const settings = await resolveOptions({
      host: 'h',
      allowedCiphers: ['ecdhe-rsa-aes128-gcm-sha256', 'TLS_AES_128_GCM_SHA256'],
    });

    // Assess
    expect(settings.allowedCiphers).toEqual([
      'ECDHE-RSA-AES128-GCM-SHA256',
      'TLS_AES_128_GCM_SHA256',
    ]);
  });

  it('refuses a CA file and a CA text together', async () => {
    await expect(
      resolveOptions({ host: 'h', caFile: 'a', caPem: 'b' }),
    ).rejects.toMatchObject({ field: 'caFile' });
  });
});

describe('runProbe', () => {
  it('throws for bad options before sending anything', async () => {
    await expect(runProbe({ host: 'h', udpPort: -1 })).rejects.toMatchObject({
      name: 'ProbeOptionsError',
      field: 'udpPort',
    });
  });
});

describe('resolveHost', () => {
  it('takes a literal address as it is, without a lookup', async () => {
    // Prepare
    const asked: string[] = [];
    const lookup = async (host: string) => {
      asked.push(host);
      return [];
    };

    // Act
    const resolved = await resolveHost('::1', lookup);

    // Assess
    expect(resolved).toEqual({ address: '::1' });
    expect(asked).toEqual([]);
  });

  it('prefers the IPv4 address of a name', async () => {
    // Prepare
    const lookup = async () => [
      { address: '2001:db8::1', family: 6 },
      { address: '198.18.0.10', family: 4 },
    ];

    // Act
    const resolved = await resolveHost('sbc.test.example', lookup);

    // Assess
    expect(resolved).toEqual({ address: '198.18.0.10' });
  });

  it('says why a name does not resolve, with the resolver code', async () => {
    // Prepare
    const lookup = async () => {
      throw Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' });
    };

    // Act
    const resolved = await resolveHost('sbc.test.example', lookup);

    // Assess
    expect(resolved).toEqual({
      problem: 'cannot resolve sbc.test.example (ENOTFOUND)',
    });
  });
});

describe('failedChecks', () => {
  it('fails every planned check with the reason, closed ports included', async () => {
    // Prepare
    const settings = await resolveOptions({
      host: 'sbc.test.example',
      closed: [{ port: 22, proto: 'tcp' }],
    });

    // Act
    const checks = failedChecks(settings, 'cannot resolve sbc.test.example');

    // Assess
    expect(checks.map((check) => check.name)).toEqual(checkNames(settings));
    expect(checks.map((check) => check.name)).toContain('closed-22/tcp');
    expect(checks.every((check) => !check.ok)).toBe(true);
    expect(new Set(checks.map((check) => check.detail))).toEqual(
      new Set(['cannot resolve sbc.test.example']),
    );
  });
});

describe('statusMeaning', () => {
  it.each([
    [404, 'alias'],
    [405, 'does not allow OPTIONS'],
    [483, 'loop'],
    [501, 'does not implement OPTIONS'],
    [403, 'not allowed'],
    [202, 'not one of the accepted'],
    [302, 'redirects'],
    [499, 'rejects'],
    [599, 'failed'],
    [603, 'declines'],
  ])('says what %i likely means', (status, words) => {
    expect(statusMeaning(status)).toContain(words);
  });
});

describe('formatReport', () => {
  const report: ProbeReport = {
    ok: false,
    host: '127.0.0.1',
    sni: 'sbc.test.example',
    address: '127.0.0.1',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 12.3,
    checks: [
      {
        name: 'sip-options-udp',
        ok: true,
        detail: '200 OK over UDP in 1 ms',
        durationMs: 1.2,
        figures: {},
      },
      {
        name: 'tls-name',
        ok: false,
        detail: 'the certificate is for DNS:other.test.example',
        durationMs: 9,
        figures: {},
      },
    ],
  };

  it('prints one row per check and the verdict with its count', () => {
    // Act
    const text = formatReport(report);

    // Assess
    const lines = text.split('\n');
    expect(lines.find((l) => l.includes('sip-options-udp'))).toContain('pass');
    expect(lines.find((l) => l.includes('tls-name'))).toContain('FAIL');
    expect(text).toContain('other.test.example');
    expect(lines.at(-1)).toBe(
      'FAIL: 127.0.0.1 (SNI sbc.test.example), 1 of 2 checks passed in 12 ms',
    );
    expect(text).not.toContain('\u001b[');
  });
});
