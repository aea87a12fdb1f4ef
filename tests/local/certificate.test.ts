import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  issueThrowawayCertificate,
  leafValidity,
} from '../../functions/lib/local/certificate.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const DAY_MS = 86_400_000;

describe('leafValidity', () => {
  it('runs from a day ago to N days ahead', () => {
    // Act
    const validity = leafValidity(30, NOW);

    // Assess
    expect(validity.notBefore.getTime()).toBe(NOW.getTime() - DAY_MS);
    expect(validity.notAfter.getTime()).toBe(NOW.getTime() + 30 * DAY_MS);
  });

  it('has already ended for zero or fewer days', () => {
    // Act
    const today = leafValidity(0, NOW);
    const past = leafValidity(-3, NOW);

    // Assess
    expect(today.notAfter.getTime()).toBeLessThan(NOW.getTime());
    expect(past.notAfter.getTime()).toBeLessThan(
      NOW.getTime() - 3 * DAY_MS + 1,
    );
    expect(past.notBefore.getTime()).toBeLessThan(past.notAfter.getTime());
  });

  it('refuses a fraction of a day', () => {
    // Act, Assess
    expect(() => leafValidity(1.5, NOW)).toThrow(RangeError);
  });
});

describeWithSystem(
  'issueThrowawayCertificate',
  { tools: [TOOLS.openssl] },
  () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sbc-ami-cert-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('issues an RSA leaf for the FQDN that its CA signed', async () => {
      // Act
      const issued = await issueThrowawayCertificate({
        dir,
        fqdn: 'sbc.example.com',
        days: 30,
      });

      // Assess
      const leaf = new X509Certificate(await readFile(issued.certificateFile));
      const ca = new X509Certificate(await readFile(issued.caFile));
      expect(leaf.subjectAltName).toBe('DNS:sbc.example.com');
      expect(leaf.publicKey.asymmetricKeyType).toBe('rsa');
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(leaf.ca).toBe(false);
      expect(ca.ca).toBe(true);
      expect(leaf.checkHost('sbc.example.com')).toBe('sbc.example.com');
      expect(new Date(leaf.validTo).getTime()).toBeGreaterThan(
        Date.now() + 29 * DAY_MS,
      );
    });

    it('issues a leaf that has expired when asked for -1 days', async () => {
      // Act
      const issued = await issueThrowawayCertificate({
        dir,
        fqdn: 'sbc.example.com',
        days: -1,
      });

      // Assess
      const leaf = new X509Certificate(await readFile(issued.certificateFile));
      const ca = new X509Certificate(await readFile(issued.caFile));
      expect(new Date(leaf.validTo).getTime()).toBeLessThan(Date.now());
      expect(new Date(ca.validTo).getTime()).toBeGreaterThan(Date.now());
    });
  },
);
