/**
 * The throwaway certificate of a local test host, standing in for the one
 * an EC2 instance fetches at first boot: a CA that exists only for this
 * run, and an RSA leaf for the profile's FQDN (Genesys accepts RSA only).
 * The validity is a parameter so that a run can be given an expired one.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { command } from './command.ts';
import { openCa } from './openssl-ca.ts';

const DAY_MS = 86_400_000;

export interface CertificateRequest {
  /** Folder for the CA, its database and the leaf; made if missing. */
  readonly dir: string;
  readonly fqdn: string;
  /**
   * Days the leaf stays valid from now. Zero or less gives a leaf that has
   * already expired (its end lies that many days in the past, minus an hour).
   */
  readonly days: number;
  readonly now?: Date;
  readonly signal?: AbortSignal;
}

export interface ThrowawayCertificate {
  /** The CA certificate: what the smoke test trusts. */
  readonly caFile: string;
  /** The leaf certificate alone (the CA is the trust anchor itself). */
  readonly certificateFile: string;
  readonly privateKeyFile: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The leaf's validity for `days`: see `CertificateRequest.days`. */
export function leafValidity(
  days: number,
  now: Date,
): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(days)) {
    throw new RangeError(`certificate days must be an integer, not ${days}`);
  }
  const notAfter =
    days > 0
      ? new Date(now.getTime() + days * DAY_MS)
      : new Date(now.getTime() + days * DAY_MS - DAY_MS / 24);
  const notBefore = new Date(
    Math.min(now.getTime(), notAfter.getTime()) - DAY_MS,
  );
  return { notBefore, notAfter };
}

/** Issues the CA and the leaf with the openssl command. */
export async function issueThrowawayCertificate(
  request: CertificateRequest,
): Promise<ThrowawayCertificate> {
  const now = request.now ?? new Date();
  const { notBefore, notAfter } = leafValidity(request.days, now);
  const dir = request.dir;
  const db = join(dir, 'ca.db');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const openssl = (args: string[]) =>
    command('openssl', args, { signal: request.signal });

  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await openssl(rsaKey(caKey));
  // The CA outlives the leaf on both sides, so only the leaf's own dates
  // decide whether the chain verifies.
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=sbc-ami local test host CA',
    '-days',
    String(Math.max(request.days, 0) + 2),
    '-sha256',
    '-addext',
    'basicConstraints = critical, CA:true, pathlen:0',
    '-addext',
    'keyUsage = critical, keyCertSign, cRLSign',
    '-out',
    caFile,
  ]);

  const privateKeyFile = join(dir, 'sbc.key');
  const csr = join(dir, 'sbc.csr');
  const extensions = join(dir, 'sbc.ext');
  const certificateFile = join(dir, 'sbc.crt');
  await openssl(rsaKey(privateKeyFile));
  await openssl([
    'req',
    '-new',
    '-key',
    privateKeyFile,
    '-subj',
    `/CN=${request.fqdn}`,
    '-out',
    csr,
  ]);
  await writeFile(
    extensions,
    [
      'basicConstraints = critical, CA:false',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = DNS:${request.fqdn}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const sign = await openCa(db, openssl);
  await sign({
    caFile,
    caKeyFile: caKey,
    csrFile: csr,
    extensionsFile: extensions,
    outFile: certificateFile,
    notBefore,
    notAfter,
  });
  return { caFile, certificateFile, privateKeyFile, notBefore, notAfter };
}

function rsaKey(file: string): string[] {
  return [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    file,
  ];
}
