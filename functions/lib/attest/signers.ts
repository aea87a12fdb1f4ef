import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  GetPublicKeyCommand,
  type KMSClient,
  SignCommand,
} from '@aws-sdk/client-kms';
import { ASN1Obj, crypto as sigstoreCrypto } from '@sigstore/core';
import { SigningError, ThrottledError, throttleAware } from '../errors.ts';
import type { LocalPaths } from '../local/paths.ts';
import { SigningKeyError } from './errors.ts';

/**
 * Signs the DSSE pre-authentication encoding. A signature is ECDSA P-256
 * over SHA-256 of `data`, DER-encoded (what KMS returns, and what cosign
 * and the Sigstore clients put in a DSSE envelope).
 */
export interface Signer {
  /** Goes into the envelope's `keyid`: a hint for verifiers, not trusted. */
  readonly keyId: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** The public key as PEM (SubjectPublicKeyInfo), for any verifier. */
  publicKeyPem(): Promise<string>;
}

/** KMS signs at most this many bytes itself; past it, send the digest. */
export const KMS_RAW_MESSAGE_LIMIT = 4096;
const KMS_KEY_SPEC = 'ECC_NIST_P256';
const KMS_ALGORITHM = 'ECDSA_SHA_256';

/** Signs with an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY). */
export class KmsSigner implements Signer {
  readonly keyId: string;
  readonly #client: KMSClient;
  #publicKey: Promise<string> | undefined;

  constructor(client: KMSClient, keyId: string) {
    this.#client = client;
    this.keyId = keyId;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    // The signature is the same either way: ECDSA over SHA-256(data). Only
    // a message over KMS's limit is hashed here first.
    const raw = data.byteLength <= KMS_RAW_MESSAGE_LIMIT;
    const message = raw ? data : createHash('sha256').update(data).digest();

    const response = await this.#call('Sign', () =>
      this.#client.send(
        new SignCommand({
          KeyId: this.keyId,
          SigningAlgorithm: KMS_ALGORITHM,
          MessageType: raw ? 'RAW' : 'DIGEST',
          Message: message,
        }),
      ),
    );

    const signature = response.Signature;
    if (signature === undefined || !isDerEcdsaSignature(signature)) {
      throw new SigningError(
        `KMS key ${this.keyId} returned no DER-encoded ECDSA signature`,
        { data: { keyId: this.keyId, bytes: signature?.byteLength ?? 0 } },
      );
    }
    return signature;
  }

  publicKeyPem(): Promise<string> {
    this.#publicKey ??= this.#fetchPublicKey().catch((error: unknown) => {
      // A failed fetch is not cached: the next call asks KMS again.
      this.#publicKey = undefined;
      throw error;
    });
    return this.#publicKey;
  }

  async #fetchPublicKey(): Promise<string> {
    const response = await this.#call('GetPublicKey', () =>
      this.#client.send(new GetPublicKeyCommand({ KeyId: this.keyId })),
    );

    const usable =
      response.KeySpec === KMS_KEY_SPEC &&
      response.KeyUsage === 'SIGN_VERIFY' &&
      (response.SigningAlgorithms ?? []).includes(KMS_ALGORITHM);
    if (!usable || response.PublicKey === undefined) {
      throw new SigningKeyError(
        `KMS key ${this.keyId} is ${response.KeySpec ?? 'of unknown spec'} ` +
          `for ${response.KeyUsage ?? 'unknown use'}; signing needs an ` +
          `${KMS_KEY_SPEC} key for SIGN_VERIFY with ${KMS_ALGORITHM}`,
        { data: { keyId: this.keyId, keySpec: response.KeySpec } },
      );
    }
    return toPem(
      sigstoreCrypto.createPublicKey(Buffer.from(response.PublicKey)),
    );
  }

  async #call<T>(action: string, call: () => Promise<T>): Promise<T> {
    try {
      return await throttleAware(`KMS ${action}`, call);
    } catch (error) {
      if (error instanceof ThrottledError) {
        throw error;
      }
      throw new SigningError(`KMS ${action} with key ${this.keyId} failed`, {
        cause: error,
        data: { keyId: this.keyId },
      });
    }
  }
}

/** File names of the local signing key under `localPaths().keys`. */
export function localKeyFiles(paths: LocalPaths): {
  privateKey: string;
  publicKey: string;
} {
  return {
    privateKey: join(paths.keys, 'signing-key.pem'),
    publicKey: join(paths.keys, 'signing-key.pub.pem'),
  };
}

/** Where `LocalKeySigner` writes the public half of a key file. */
export function publicKeyFileFor(keyFile: string): string {
  return keyFile.endsWith('.pem')
    ? `${keyFile.slice(0, -'.pem'.length)}.pub.pem`
    : `${keyFile}.pub`;
}

/** Signs with a P-256 private key in a PEM file (local mode). */
export class LocalKeySigner implements Signer {
  readonly keyId: string;
  readonly keyFile: string;
  readonly publicKeyFile: string;
  readonly #privateKey: KeyObject;
  readonly #publicKeyPem: string;

  private constructor(keyFile: string, privateKey: KeyObject) {
    this.keyFile = keyFile;
    this.publicKeyFile = publicKeyFileFor(keyFile);
    this.#privateKey = privateKey;
    const publicKey = createPublicKey(privateKey);
    this.#publicKeyPem = toPem(publicKey);
    this.keyId = `sha256:${createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')}`;
  }

  /**
   * Opens a key file, creating a new P-256 key (mode 0600) when it does not
   * exist, and writes its public half beside it when that is missing.
   */
  static async open(keyFile: string): Promise<LocalKeySigner> {
    const pem = (await readKeyFile(keyFile)) ?? (await createKeyFile(keyFile));

    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch (error) {
      throw new SigningKeyError(`${keyFile} is not a PEM private key`, {
        cause: error,
        data: { keyFile },
      });
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
      throw new SigningKeyError(
        `${keyFile} holds a ${privateKey.asymmetricKeyType} key` +
          `${curve === undefined ? '' : ` on ${curve}`}; signing needs ` +
          'an EC P-256 key',
        { data: { keyFile } },
      );
    }

    const signer = new LocalKeySigner(keyFile, privateKey);
    await writeFile(signer.publicKeyFile, signer.#publicKeyPem, {
      flag: 'wx',
      mode: 0o644,
    }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') {
        throw error;
      }
    });
    return signer;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    // Node signs EC keys in DER unless told otherwise (`dsaEncoding`).
    return sign('sha256', data, this.#privateKey);
  }

  async publicKeyPem(): Promise<string> {
    return this.#publicKeyPem;
  }
}

async function readKeyFile(keyFile: string): Promise<string | undefined> {
  let mode: number;
  try {
    mode = (await stat(keyFile)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw new SigningKeyError(`cannot read key file ${keyFile}`, {
      cause: error,
      data: { keyFile },
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new SigningKeyError(
      `key file ${keyFile} is open to other users (mode ` +
        `${(mode & 0o777).toString(8)}); run chmod 600 on it`,
      { data: { keyFile } },
    );
  }
  try {
    return await readFile(keyFile, 'utf8');
  } catch (error) {
    throw new SigningKeyError(`cannot read key file ${keyFile}`, {
      cause: error,
      data: { keyFile },
    });
  }
}

async function createKeyFile(keyFile: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
  try {
    // `wx`: two runs starting at once must not overwrite each other's key.
    await writeFile(keyFile, pem, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const existing = await readKeyFile(keyFile);
      if (existing !== undefined) {
        return existing;
      }
    }
    throw new SigningKeyError(`cannot create key file ${keyFile}`, {
      cause: error,
      data: { keyFile },
    });
  }
  // The mode given to writeFile passes through the umask; make it exact.
  await chmod(keyFile, 0o600);
  return pem;
}

function toPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * True when `signature` is a canonical DER ECDSA-Sig-Value: a SEQUENCE of
 * two positive INTEGERs in minimal form, with nothing after it. A raw
 * `r || s` signature (IEEE P1363, 64 bytes for P-256) is not.
 */
export function isDerEcdsaSignature(signature: Uint8Array): boolean {
  const bytes = Buffer.from(signature);
  let sequence: ASN1Obj;
  try {
    sequence = ASN1Obj.parseBuffer(bytes);
  } catch {
    return false;
  }
  if (
    !sequence.tag.isUniversal() ||
    sequence.tag.number !== 0x10 ||
    !sequence.tag.constructed ||
    sequence.subs.length !== 2 ||
    !sequence.toDER().equals(bytes)
  ) {
    return false;
  }
  return sequence.subs.every(
    (integer) => integer.tag.isInteger() && isMinimalPositive(integer.value),
  );
}

function isMinimalPositive(value: Buffer): boolean {
  const [first, second] = value;
  if (first === undefined || first >= 0x80) {
    return false;
  }
  if (first === 0x00) {
    // A leading zero is allowed only to keep a high first bit positive.
    return second !== undefined && second >= 0x80;
  }
  return true;
}
