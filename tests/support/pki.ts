import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openCa } from '../../functions/lib/local/openssl-ca.ts';

type CaSigner = Awaited<ReturnType<typeof openCa>>;

/**
 * A throwaway PKI made with the openssl CLI: a root CA, an intermediate CA
 * and leaf certificates issued by the intermediate (valid, expired, for
 * another name, RSA or EC keys). Everything lives in one temporary folder
 * that `remove()` deletes.
 */

const run = promisify(execFile);
const DAY_MS = 86_400_000;

export interface Authority {
  readonly certFile: string;
  readonly keyFile: string;
  readonly pem: string;
}

export interface Leaf {
  /** The leaf certificate alone. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The leaf followed by the intermediate: what a server should send. */
  readonly chainFile: string;
  readonly pem: string;
}

export interface LeafRequest {
  readonly commonName: string;
  /** DNS names in the SAN; the common name by default. */
  readonly dnsNames?: readonly string[];
  /** Addresses in the SAN (`127.0.0.1`). */
  readonly ipAddresses?: readonly string[];
  /** A day ago by default. */
  readonly notBefore?: Date;
  /** 90 days from now by default. */
  readonly notAfter?: Date;
  readonly keyType?: 'rsa' | 'ec';
}

export interface TestPki {
  readonly dir: string;
  readonly root: Authority;
  readonly intermediate: Authority;
  /** Issues a leaf from the intermediate; `label` names its files. */
  issueLeaf(label: string, request: LeafRequest): Promise<Leaf>;
  /** A self-signed CA that issued nothing here, for "wrong CA" cases. */
  otherRoot(label: string): Promise<Authority>;
  remove(): Promise<void>;
}

/** A date `days` from now (negative for the past). */
export function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY_MS);
}

export async function createPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sbc-ami-pki-'));
  try {
    const root = await selfSignedRoot(dir, 'root', 'sbc-ami Test Root CA');
    const signByRoot = await openCa(join(dir, 'root.db'), openssl);
    const intermediate = await issue(dir, signByRoot, root, {
      label: 'intermediate',
      subject: 'sbc-ami Test Intermediate CA',
      keyType: 'rsa',
      notBefore: daysFromNow(-1),
      notAfter: daysFromNow(365),
      extensions: [
        'basicConstraints = critical, CA:true, pathlen:0',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
      ],
    });
    const signByIntermediate = await openCa(
      join(dir, 'intermediate.db'),
      openssl,
    );

    // openssl ca keeps a database per issuer: issue one leaf at a time.
    let queue: Promise<unknown> = Promise.resolve();
    const issueLeaf = (label: string, request: LeafRequest): Promise<Leaf> => {
      const next = queue.then(() =>
        leaf(dir, signByIntermediate, intermediate, label, request),
      );
      queue = next.catch(() => undefined);
      return next;
    };

    return {
      dir,
      root,
      intermediate,
      issueLeaf,
      otherRoot: (label) => selfSignedRoot(dir, label, `${label} Other CA`),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function leaf(
  dir: string,
  sign: CaSigner,
  intermediate: Authority,
  label: string,
  request: LeafRequest,
): Promise<Leaf> {
  const names = [
    ...(request.dnsNames ?? [request.commonName]).map((name) => `DNS:${name}`),
    ...(request.ipAddresses ?? []).map((address) => `IP:${address}`),
  ];
  const issued = await issue(dir, sign, intermediate, {
    label,
    subject: request.commonName,
    keyType: request.keyType ?? 'rsa',
    notBefore: request.notBefore ?? daysFromNow(-1),
    notAfter: request.notAfter ?? daysFromNow(90),
    extensions: [
      'basicConstraints = critical, CA:false',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${names.join(', ')}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
  });
  const chainFile = join(dir, `${label}.chain.pem`);
  await writeFile(chainFile, issued.pem + intermediate.pem);
  return { ...issued, chainFile };
}

async function selfSignedRoot(
  dir: string,
  label: string,
  subject: string,
): Promise<Authority> {
  const keyFile = await newKey(dir, label, 'rsa');
  const certFile = join(dir, `${label}.pem`);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    `/CN=${subject}`,
    '-days',
    '365',
    '-sha256',
    '-addext',
    'basicConstraints = critical, CA:true',
    '-addext',
    'keyUsage = critical, keyCertSign, cRLSign',
    '-out',
    certFile,
  ]);
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

interface IssueRequest {
  readonly label: string;
  readonly subject: string;
  readonly keyType: 'rsa' | 'ec';
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly string[];
}

async function issue(
  dir: string,
  sign: CaSigner,
  authority: Authority,
  request: IssueRequest,
): Promise<Authority> {
  const keyFile = await newKey(dir, request.label, request.keyType);
  const csrFile = join(dir, `${request.label}.csr`);
  const extFile = join(dir, `${request.label}.ext`);
  const certFile = join(dir, `${request.label}.pem`);
  await openssl([
    'req',
    '-new',
    '-key',
    keyFile,
    '-subj',
    `/CN=${request.subject}`,
    '-out',
    csrFile,
  ]);
  await writeFile(extFile, `${request.extensions.join('\n')}\n`);
  await sign({
    caFile: authority.certFile,
    caKeyFile: authority.keyFile,
    csrFile,
    extensionsFile: extFile,
    outFile: certFile,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
  });
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

async function newKey(
  dir: string,
  label: string,
  keyType: 'rsa' | 'ec',
): Promise<string> {
  const keyFile = join(dir, `${label}.key`);
  const algorithm =
    keyType === 'rsa'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
      : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await openssl(['genpkey', ...algorithm, '-out', keyFile]);
  return keyFile;
}

async function openssl(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('openssl', args);
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, {
      cause: error,
    });
  }
}
