import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from 'vitest';
import { main } from '../../cli/main.ts';
import type { ProbeReport } from '../../functions/lib/probe/index.ts';
import {
  freePort,
  KAMAILIO_NEEDS,
  type KamailioServer,
  ROUTES,
  SBC_NAME,
  startKamailio,
} from '../support/kamailio.ts';
import { createPki, type TestPki } from '../support/pki.ts';
import { describeWithSystem } from '../support/system.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'sbc-ami.js');

/** Runs the real command in its own process: exit code and stdout. */
async function sbcAmi(
  args: string[],
): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run('node', [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string };
    if (typeof failed.code !== 'number') {
      throw error;
    }
    return { code: failed.code, stdout: failed.stdout ?? '' };
  }
}

describe('sbc-ami probe usage errors', () => {
  let errors: string[];

  beforeAll(() => {
    errors = [];
  });

  afterEach(() => {
    vi.restoreAllMocks();
    errors.length = 0;
  });

  function spyOnErrors(): void {
    vi.spyOn(console, 'error').mockImplementation((text: unknown) => {
      errors.push(String(text));
    });
  }

  it.each([
    [
      ['--udp-port', 'abc'],
      '--udp-port: must be a port from 1 to 65535, got "abc"',
    ],
    [
      ['--tcp-port', '0'],
      '--tcp-port: must be a port from 1 to 65535, got "0"',
    ],
    [
      ['--tls-port', '65536'],
      '--tls-port: must be a port from 1 to 65535, got "65536"',
    ],
    [
      ['--timeout', '-1'],
      '--timeout: must be a whole number of milliseconds from 1 to 600000, ' +
        'got "-1"',
    ],
    [
      ['--timeout', '1.5'],
      '--timeout: must be a whole number of milliseconds from 1 to 600000, ' +
        'got "1.5"',
    ],
    [
      ['--min-days', '-3'],
      '--min-days: must be a whole number of days from 0 to 3650, got "-3"',
    ],
    [
      ['--min-days', '99999'],
      '--min-days: must be a whole number of days from 0 to 3650, got "99999"',
    ],
    [['--closed', '22/tcp,x'], '--closed: item 2 "x" is not PORT/udp'],
    [
      ['--accept', '200,9'],
      '--accept item 2: must be a SIP status from 100 to 699, got "9"',
    ],
    [['--ciphers', 'A B'], '--ciphers: "A B" is not a TLS cipher suite'],
    [
      ['--ciphers', 'ECDHE-RSA-AES128-GCM-SHA256:NOPE'],
      '--ciphers: "NOPE" is not a TLS cipher suite OpenSSL knows',
    ],
    [['--ca', '/nonexistent/ca.pem'], '--ca: cannot read /nonexistent/ca.pem'],
  ])('exits 2 for %j and names the flag', async (flags, message) => {
    // Prepare
    spyOnErrors();

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'probe',
      '127.0.0.1',
      ...flags,
    ]);

    // Assess
    expect(code).toBe(2);
    expect(errors.join('\n')).toContain(`sbc-ami: ${message}`);
  });

  it('exits 2 without a host', async () => {
    // Prepare
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    // Act
    const code = await main(['node', 'sbc-ami', 'probe']);

    // Assess
    expect(code).toBe(2);
  });
});

describeWithSystem(
  'sbc-ami probe against a real Kamailio',
  KAMAILIO_NEEDS,
  () => {
    let pki: TestPki;
    let healthy: KamailioServer;
    let notFound: KamailioServer;

    beforeAll(async () => {
      pki = await createPki();
      const leaf = await pki.issueLeaf('sbc', { commonName: SBC_NAME });
      const tls = {
        certificateFile: leaf.chainFile,
        privateKeyFile: leaf.keyFile,
      };
      [healthy, notFound] = await Promise.all([
        startKamailio({ tls }),
        startKamailio({ tls, route: ROUTES.notFound }),
      ]);
    });

    afterAll(async () => {
      await Promise.all([healthy?.stop(), notFound?.stop()]);
      await pki?.remove();
    });

    function flags(server: KamailioServer): string[] {
      return [
        'probe',
        server.address,
        '--sni',
        SBC_NAME,
        '--ca',
        pki.root.certFile,
        '--udp-port',
        String(server.sipPort),
        '--tcp-port',
        String(server.sipPort),
        '--tls-port',
        String(server.tlsPort),
      ];
    }

    it('exits 0 and prints one object with ok and a check per entry', async () => {
      // Prepare
      const closed = await freePort(false);

      // Act
      const { code, stdout } = await sbcAmi([
        ...flags(healthy),
        '--closed',
        `${closed}/tcp`,
        '--json',
      ]);

      // Assess
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as ProbeReport;
      expect(report.ok).toBe(true);
      expect(report.checks).toHaveLength(11);
      for (const check of report.checks) {
        expect(check).toEqual({
          name: expect.any(String),
          ok: true,
          detail: expect.any(String),
          durationMs: expect.any(Number),
          figures: expect.any(Object),
        });
      }
      expect(report.checks.at(-1)?.name).toBe(`closed-${closed}/tcp`);
    });

    it('exits 1 and prints the table when a check fails', async () => {
      // Act
      const { code, stdout } = await sbcAmi(flags(notFound));

      // Assess
      expect(code).toBe(1);
      const row = stdout
        .split('\n')
        .find((line) => line.includes('sip-options-udp'));
      expect(row).toContain('FAIL');
      expect(row).toContain('404 Not Found over UDP');
      expect(stdout.trim().split('\n').at(-1)).toMatch(
        /^FAIL: 127\.0\.0\.1 \(SNI sbc\.test\.example\), 7 of 10 checks passed in \d+ ms$/,
      );
    });

    it('exits 1 with --json too, the failing entries saying why', async () => {
      // Act
      const { code, stdout } = await sbcAmi([...flags(notFound), '--json']);

      // Assess
      expect(code).toBe(1);
      const report = JSON.parse(stdout) as ProbeReport;
      expect(report.ok).toBe(false);
      const failed = report.checks.filter((check) => !check.ok);
      expect(failed.map((check) => check.figures.status)).toEqual([
        404, 404, 404,
      ]);
    });
  },
);
