import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNames } from '../../functions/lib/probe/index.ts';
import { resolveOptions } from '../../functions/lib/probe/options.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import {
  freePort,
  KAMAILIO_NEEDS,
  type KamailioServer,
  ROUTES,
  SBC_NAME,
  startKamailio,
} from '../support/kamailio.ts';
import { createPki, type Leaf, type TestPki } from '../support/pki.ts';
import { describeWithSystem } from '../support/system.ts';
import { check, failing, probeServer } from './support.ts';

const run = promisify(execFile);

describeWithSystem(
  'runProbe over SIP against a real Kamailio',
  { ...KAMAILIO_NEEDS, tools: [...KAMAILIO_NEEDS.tools, TOOLS.sipsak] },
  () => {
    let pki: TestPki;
    let leaf: Leaf;

    beforeAll(async () => {
      pki = await createPki();
      leaf = await pki.issueLeaf('sbc', {
        commonName: SBC_NAME,
        ipAddresses: ['127.0.0.1'],
      });
    });

    afterAll(async () => {
      await pki?.remove();
    });

    function tls() {
      return { certificateFile: leaf.chainFile, privateKeyFile: leaf.keyFile };
    }

    /** Lets closing handles finish closing (a polling helper would add timers). */
    function settle(): Promise<void> {
      return new Promise((resolve) => setTimeout(resolve, 500));
    }

    /** The sockets and timers this process holds, by kind. */
    function networkResources(): string[] {
      return process
        .getActiveResourcesInfo()
        .filter((kind) => /TCP|UDP|TLS|Pipe|Timeout/.test(kind))
        .sort();
    }

    describe('against a healthy Kamailio', () => {
      let server: KamailioServer;

      beforeAll(async () => {
        server = await startKamailio({ tls: tls() });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('passes every check and reports each with its figures', async () => {
        // Prepare
        const closedTcp = await freePort(false);
        const closedUdp = await freePort(true);
        const closed = [
          { port: closedTcp, proto: 'tcp' as const },
          { port: closedUdp, proto: 'udp' as const },
        ];

        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          closed,
        });

        // Assess
        expect(failing(report)).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report).toMatchObject({
          host: '127.0.0.1',
          sni: SBC_NAME,
          address: '127.0.0.1',
        });
        const settings = await resolveOptions({ host: 'h', closed });
        expect(report.checks.map((c) => c.name)).toEqual(checkNames(settings));
        for (const transport of ['udp', 'tcp', 'tls']) {
          expect(
            check(report, `sip-options-${transport}`).figures,
          ).toMatchObject({
            status: 200,
            server: expect.stringContaining('kamailio'),
          });
        }
        expect(check(report, 'tls-version').figures.protocol).toBe('TLSv1.3');
        expect(check(report, 'tls-cipher').figures).toMatchObject({
          protocol: 'TLSv1.2',
          keyType: 'rsa',
        });
        expect(check(report, 'tls-chain').figures.caSource).toBe('file');
        expect(check(report, `closed-${closedUdp}/udp`).figures.state).toBe(
          'refused',
        );
      });

      it('sends the three OPTIONS to the SBC name, without user part', async () => {
        // Act
        await probeServer(server, { caFile: pki.root.certFile });

        // Assess
        const log = server.log();
        const uri = `sip:${SBC_NAME}:`;
        expect(log).toContain(`OPTIONS ${uri}${server.sipPort} over udp`);
        expect(log).toContain(
          `OPTIONS ${uri}${server.sipPort};transport=tcp over tcp`,
        );
        expect(log).toContain(
          `OPTIONS ${uri}${server.tlsPort};transport=tls over tls`,
        );
      });

      it('keeps the report small and JSON-serialisable', async () => {
        // Act
        const report = await probeServer(server, { caFile: pki.root.certFile });

        // Assess
        const json = JSON.stringify(report);
        expect(JSON.parse(json)).toEqual(report);
        expect(json.length).toBeLessThan(4096);
        for (const item of report.checks) {
          expect(Object.keys(item).sort()).toEqual([
            'detail',
            'durationMs',
            'figures',
            'name',
            'ok',
          ]);
          for (const value of Object.values(item.figures)) {
            expect(['string', 'number', 'boolean']).toContain(typeof value);
          }
        }
      });

      it('leaves no socket or timer behind', async () => {
        // Prepare
        await settle();
        const before = networkResources();

        // Act
        await probeServer(server, { caFile: pki.root.certFile });

        // Assess
        await settle();
        expect(networkResources()).toEqual(before);
      });

      it('resolves a host name once and probes that address', async () => {
        // Act
        const report = await probeServer(server, {
          host: 'localhost',
          caFile: pki.root.certFile,
        });

        // Assess
        expect(report.address).toBe('127.0.0.1');
        expect(report.ok).toBe(true);
      });
    });

    describe('against a Kamailio answering 404', () => {
      let server: KamailioServer;

      beforeAll(async () => {
        server = await startKamailio({ tls: tls(), route: ROUTES.notFound });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('fails the three OPTIONS checks and says what 404 likely means', async () => {
        // Act
        const report = await probeServer(server, { caFile: pki.root.certFile });

        // Assess
        expect(report.ok).toBe(false);
        expect(failing(report)).toEqual([
          'sip-options-udp',
          'sip-options-tcp',
          'sip-options-tls',
        ]);
        const udp = check(report, 'sip-options-udp');
        expect(udp.detail).toMatch(/^404 Not Found over UDP: .*Request-URI/);
        expect(udp.figures).toMatchObject({ status: 404, reason: 'Not Found' });
      });

      it('passes when 404 is an accepted status', async () => {
        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          acceptedStatuses: [200, 404],
        });

        // Assess
        expect(failing(report)).toEqual([]);
      });
    });

    describe('against a Kamailio silent on UDP', () => {
      let server: KamailioServer;

      beforeAll(async () => {
        server = await startKamailio({
          tls: tls(),
          route: ROUTES.silentOnUdp + ROUTES.healthy,
        });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('fails only the UDP check, naming UDP, after retransmitting', async () => {
        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          timeoutMs: 1200,
        });

        // Assess
        expect(failing(report)).toEqual(['sip-options-udp']);
        const udp = check(report, 'sip-options-udp');
        expect(udp.detail).toMatch(
          /^UDP \d+\/udp: no answer within 1200 ms after \d+ transmissions$/,
        );
        expect(udp.figures.transmissions).toBeGreaterThan(1);
        expect(udp.figures.code).toBe('TIMEOUT');
      });
    });

    describe('against a Kamailio slow on UDP', () => {
      let server: KamailioServer;

      beforeAll(async () => {
        server = await startKamailio({
          tls: tls(),
          route: ROUTES.slowOnUdp(1500) + ROUTES.healthy,
        });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('fails the UDP check when the answer comes after the timeout', async () => {
        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          timeoutMs: 700,
        });

        // Assess
        expect(failing(report)).toEqual(['sip-options-udp']);
        expect(check(report, 'sip-options-udp').detail).toContain(
          'no answer within 700 ms',
        );
      });

      it('passes the same SBC when the timeout leaves it time to answer', async () => {
        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          timeoutMs: 6000,
        });

        // Assess
        expect(failing(report)).toEqual([]);
        expect(
          check(report, 'sip-options-udp').figures.answerMs,
        ).toBeGreaterThanOrEqual(1500);
      });
    });

    describe('with ports that must stay closed', () => {
      let server: KamailioServer;

      beforeAll(async () => {
        server = await startKamailio({
          tls: tls(),
          extraListen: ['udp', 'tcp'],
        });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('fails each closed port that answers and passes those that do not', async () => {
        // Prepare
        const open = server.extraPort ?? 0;
        const shut = await freePort(true);

        // Act
        const report = await probeServer(server, {
          caFile: pki.root.certFile,
          closed: [
            { port: open, proto: 'tcp' },
            { port: open, proto: 'udp' },
            { port: shut, proto: 'tcp' },
            { port: shut, proto: 'udp' },
          ],
        });

        // Assess
        expect(failing(report)).toEqual([
          `closed-${open}/tcp`,
          `closed-${open}/udp`,
        ]);
        expect(check(report, `closed-${open}/tcp`).detail).toBe(
          `${open}/tcp accepts connections`,
        );
        expect(check(report, `closed-${open}/udp`).detail).toBe(
          `${open}/udp answers SIP (200 OK)`,
        );
        expect(check(report, `closed-${shut}/tcp`).detail).toBe(
          `${shut}/tcp refused`,
        );
      });
    });

    describe('beside sipsak', () => {
      const servers: KamailioServer[] = [];

      afterAll(async () => {
        await Promise.all(servers.map((server) => server.stop()));
      });

      /** sipsak's verdict: exit 0 means a 200 came back. */
      async function sipsak(
        server: KamailioServer,
        transport: 'udp' | 'tcp' | 'tls',
      ): Promise<boolean> {
        const port = transport === 'tls' ? server.tlsPort : server.sipPort;
        // sipsak cuts 5-digit ports out of the URI, hence -r for the port.
        const args = ['-s', 'sip:127.0.0.1', '-r', String(port)];
        args.push('--transport', transport);
        if (transport === 'tls') {
          args.push('--tls-ca-cert', pki.root.certFile);
        }
        try {
          await run('sipsak', args, { timeout: 20_000 });
          return true;
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          if (code === 1 || code === 3) {
            return false;
          }
          throw error;
        }
      }

      it.each([
        ['healthy', ROUTES.healthy, true],
        ['answering 404', ROUTES.notFound, false],
      ])('agrees with sipsak on an SBC %s', async (_, route, expected) => {
        // Prepare
        // sipsak 0.9.8.1 reads nothing after a TLS 1.3 handshake (the
        // post-handshake tickets upset it): this SBC speaks TLS 1.2 only, as
        // a Genesys trunk does. sipsak puts 127.0.0.1 in its Request-URI.
        const server = await startKamailio({
          tls: { ...tls(), method: 'TLSv1.2' },
          route,
          aliases: [SBC_NAME, '127.0.0.1'],
        });
        servers.push(server);

        // Act
        const report = await probeServer(server, { caFile: pki.root.certFile });
        const independent = {
          udp: await sipsak(server, 'udp'),
          tcp: await sipsak(server, 'tcp'),
          tls: await sipsak(server, 'tls'),
        };

        // Assess
        expect(independent).toEqual({
          udp: expected,
          tcp: expected,
          tls: expected,
        });
        expect({
          udp: check(report, 'sip-options-udp').ok,
          tcp: check(report, 'sip-options-tcp').ok,
          tls: check(report, 'sip-options-tls').ok,
        }).toEqual(independent);
      });
    });

    describe('the Kamailio fixture', () => {
      it('stops Kamailio and every process it forked', async () => {
        // Prepare
        const server = await startKamailio({ tls: tls() });

        // Act
        await server.stop();

        // Assess
        expect(() => process.kill(-server.pid, 0)).toThrow(
          expect.objectContaining({ code: 'ESRCH' }),
        );
        await expect(
          probeServer(server, { caFile: pki.root.certFile, timeoutMs: 500 }),
        ).resolves.toMatchObject({ ok: false });
      });
    });
  },
);
