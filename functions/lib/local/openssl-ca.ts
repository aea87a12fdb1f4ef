/**
 * A certificate authority run by the openssl command. `openssl ca` is the
 * one openssl command of Debian 12 that takes both validity dates, past
 * ones included, which an expired test certificate needs.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Runs `openssl ARGS`; how (signal, error text) is the caller's. */
export type OpensslRunner = (args: string[]) => Promise<unknown>;

export interface CaSigning {
  /** The authority's certificate and private key. */
  readonly caFile: string;
  readonly caKeyFile: string;
  readonly csrFile: string;
  /** An openssl extensions file for the new certificate. */
  readonly extensionsFile: string;
  readonly outFile: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * An authority's signing state: a folder `db` with its database, serial
 * and `ca.cnf`. Resolves to a signer of certificate requests.
 */
export async function openCa(
  db: string,
  openssl: OpensslRunner,
): Promise<(signing: CaSigning) => Promise<void>> {
  await mkdir(db, { recursive: true, mode: 0o700 });
  const config = join(db, 'ca.cnf');
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(join(db, 'serial'), `${randomBytes(16).toString('hex')}\n`);
  await writeFile(
    config,
    [
      '[ca]',
      'default_ca = authority',
      '[authority]',
      `database = ${join(db, 'index.txt')}`,
      `new_certs_dir = ${db}`,
      `serial = ${join(db, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      'email_in_dn = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );

  return async (signing) => {
    await openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      config,
      '-cert',
      signing.caFile,
      '-keyfile',
      signing.caKeyFile,
      '-in',
      signing.csrFile,
      '-out',
      signing.outFile,
      '-startdate',
      asn1Time(signing.notBefore),
      '-enddate',
      asn1Time(signing.notAfter),
      '-extfile',
      signing.extensionsFile,
    ]);
  };
}

/** `YYYYMMDDHHMMSSZ`, the form `openssl ca -startdate` takes. */
export function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}
