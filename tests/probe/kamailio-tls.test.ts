import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeReport } from '../../functions/lib/probe/index.ts';
import {
  KAMAILIO_NEEDS,
  type KamailioServer,
  type KamailioTls,
  SBC_NAME,
  startKamailio,
} from '../support/kamailio.ts';
import {
  createPki,
  daysFromNow,
  type Leaf,
  type TestPki,
} from '../support/pki.ts';
import { describeWithSystem } from '../support/system.ts';
import { check, failing, probeServer } from './support.ts';

/**
 * One Kamailio per TLS case, each with its own certificate or TLS settings,
 * probed with the throwaway root CA as the trusted bundle.
 */
describeWithSystem(
  'runProbe over TLS against a real Kamailio',
  KAMAILIO_NEEDS,
  () => {
    let pki: TestPki;
    const leaves: Record<string, Leaf> = {};

    beforeAll(async () => {
      pki = await createPki();
      const requests = {
        good: { commonName: SBC_NAME },
        expired: {
          commonName: SBC_NAME,
          notBefore: daysFromNow(-90),
          notAfter: daysFromNow(-3),
        },
        soon: { commonName: SBC_NAME, notAfter: daysFromNow(5) },
        other: { commonName: 'other.test.example' },
        ec: { commonName: SBC_NAME, keyType: 'ec' as const },
      };
      for (const [label, request] of Object.entries(requests)) {
        leaves[label] = await pki.issueLeaf(label, request);
      }
    });

    afterAll(async () => {
      await pki?.remove();
    });

    function serving(label: string, chain = true): KamailioTls {
      const leaf = leaves[label] as Leaf;
      return {
        certificateFile: chain ? leaf.chainFile : leaf.certFile,
        privateKeyFile: leaf.keyFile,
      };
    }

    /** Starts a Kamailio for the describe block and stops it after. */
    function kamailio(tls: () => KamailioTls): () => KamailioServer {
      let server: KamailioServer | undefined;
      beforeAll(async () => {
        server = await startKamailio({ tls: tls() });
      });
      afterAll(async () => {
        await server?.stop();
      });
      return () => server as KamailioServer;
    }

    function probe(
      server: KamailioServer,
      options: Parameters<typeof probeServer>[1] = {},
    ): Promise<ProbeReport> {
      return probeServer(server, { caFile: pki.root.certFile, ...options });
    }

    describe('a server that allows only TLS 1.1', () => {
      const server = kamailio(() => ({
        ...serving('good'),
        method: 'TLSv1.1',
        cipherList: 'DEFAULT:@SECLEVEL=0',
      }));

      it('fails on the version and still judges the certificate', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(report.ok).toBe(false);
        expect(failing(report)).toEqual([
          'sip-options-tls',
          'tls-version',
          'tls-1.1-refused',
          'tls-cipher',
        ]);
        expect(check(report, 'tls-version').detail).toBe(
          'TLSv1.1 chosen from TLS 1.0 to 1.3: Genesys Cloud accepts TLS 1.2 only',
        );
        expect(check(report, 'tls-1.1-refused').detail).toMatch(
          /^the SBC accepts TLS 1\.1 /,
        );
        expect(check(report, 'sip-options-tls').detail).toContain(
          'TLS handshake failed',
        );
        expect(check(report, 'tls-chain').detail).toContain(
          'seen over TLSv1.1',
        );
      });
    });

    describe('a server that still allows TLS 1.0 and 1.1', () => {
      const server = kamailio(() => ({
        ...serving('good'),
        method: 'TLSv1+',
        cipherList: 'DEFAULT:@SECLEVEL=0',
      }));

      it('fails both refusal checks: the probe really offers them', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual(['tls-1.0-refused', 'tls-1.1-refused']);
        expect(check(report, 'tls-1.0-refused').figures.protocol).toBe('TLSv1');
        expect(check(report, 'tls-1.1-refused').figures.protocol).toBe(
          'TLSv1.1',
        );
        expect(check(report, 'tls-version').figures.protocol).toBe('TLSv1.3');
      });
    });

    describe('a healthy server, TLS 1.2 and newer', () => {
      const server = kamailio(() => serving('good'));

      it('sees TLS 1.0 and 1.1 refused by the server', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual([]);
        for (const name of ['tls-1.0-refused', 'tls-1.1-refused']) {
          expect(check(report, name).figures.code).toBe(
            'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
          );
        }
      });

      it('fails the chain against the system store, which lacks the test CA', async () => {
        // Act
        const report = await probeServer(server());

        // Assess
        expect(failing(report)).toEqual(['tls-chain']);
        expect(check(report, 'tls-chain').figures).toMatchObject({
          caSource: 'system',
          code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
        });
      });

      it('verifies the chain against a CA given as PEM text', async () => {
        // Act
        const report = await probeServer(server(), { caPem: pki.root.pem });

        // Assess
        expect(failing(report)).toEqual([]);
        expect(check(report, 'tls-chain').figures.caSource).toBe('pem');
      });
    });

    describe('an expired certificate', () => {
      const server = kamailio(() => serving('expired'));

      it('fails the chain and the expiry, each with its reason', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual(['tls-chain', 'tls-expiry']);
        expect(check(report, 'tls-chain').detail).toBe(
          'a certificate of the chain has expired (CERT_HAS_EXPIRED)',
        );
        expect(check(report, 'tls-expiry').detail).toMatch(
          /^expired on \S+ \(3(\.\d)? days ago\)$/,
        );
        expect(check(report, 'tls-expiry').figures.daysLeft).toBeLessThan(0);
      });
    });

    describe('a certificate about to expire', () => {
      const server = kamailio(() => serving('soon'));

      it('fails with fewer days left than asked, passes with fewer asked', async () => {
        // Act
        const strict = await probe(server());
        const lenient = await probe(server(), { minDays: 3 });

        // Assess
        expect(failing(strict)).toEqual(['tls-expiry']);
        expect(check(strict, 'tls-expiry').detail).toContain('fewer than 14');
        expect(failing(lenient)).toEqual([]);
      });
    });

    describe('a certificate for another name', () => {
      const server = kamailio(() => serving('other'));

      it('fails the name check and says which name it holds', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual(['tls-name']);
        expect(check(report, 'tls-name').detail).toBe(
          `the certificate is for DNS:other.test.example, not ${SBC_NAME}`,
        );
      });

      it('passes when probed with the name the certificate holds', async () => {
        // Act
        const report = await probe(server(), { sni: 'other.test.example' });

        // Assess
        expect(check(report, 'tls-name').ok).toBe(true);
      });
    });

    describe('a chain without its intermediate', () => {
      const server = kamailio(() => serving('good', false));

      it('fails the chain and says the intermediate is missing', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual(['tls-chain']);
        expect(check(report, 'tls-chain').detail).toContain(
          'without the intermediate',
        );
        expect(check(report, 'tls-chain').figures.code).toBe(
          'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        );
      });

      it('passes when the client already holds the intermediate', async () => {
        // Act
        const report = await probe(server(), {
          caFile: undefined,
          caPem: pki.root.pem + pki.intermediate.pem,
        });

        // Assess
        expect(failing(report)).toEqual([]);
      });
    });

    describe('a certificate with an EC key', () => {
      const server = kamailio(() => serving('ec'));

      it('fails the cipher check: the Genesys suites are RSA-authenticated', async () => {
        // Act
        const report = await probe(server());

        // Assess
        expect(failing(report)).toEqual(['tls-cipher']);
        expect(check(report, 'tls-cipher').figures).toMatchObject({
          keyType: 'ec',
          cipher: expect.stringMatching(/^ECDHE-ECDSA-/),
        });
      });
    });

    describe('a server choosing its certificate by SNI', () => {
      let server: KamailioServer | undefined;

      beforeAll(async () => {
        const named = leaves.good as Leaf;
        server = await startKamailio({
          tls: {
            ...serving('other'),
            byServerName: [
              {
                serverName: SBC_NAME,
                certificateFile: named.chainFile,
                privateKeyFile: named.keyFile,
              },
            ],
          },
        });
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('gets the certificate for the name it sends as SNI', async () => {
        // Act
        const report = await probe(server as KamailioServer);

        // Assess
        expect(failing(report)).toEqual([]);
        expect(check(report, 'tls-name').figures.names).toBe(`DNS:${SBC_NAME}`);
      });
    });
  },
);
