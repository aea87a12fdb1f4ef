import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  GetPublicKeyCommand,
  KMSClient,
  SignCommand,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isDerEcdsaSignature,
  KMS_RAW_MESSAGE_LIMIT,
  KmsSigner,
  LocalKeySigner,
  SigningKeyError,
} from '../../functions/lib/attest/index.ts';
import { SigningError, ThrottledError } from '../../functions/lib/errors.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  derIntegerLengths,
  type KeyPair,
  KMS_KEY_ID,
  kmsSignsWith,
  p256,
  tempDir,
  toP1363,
} from './fixtures.ts';

const kms = mockClient(KMSClient);

describe('KmsSigner', () => {
  let key: KeyPair;

  beforeEach(() => {
    kms.reset();
    key = p256();
    kmsSignsWith(kms, key);
  });

  describe('sign', () => {
    it('asks KMS for ECDSA_SHA_256 over the raw message', async () => {
      // Prepare
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);
      const message = Buffer.from(
        'DSSEv1 28 application/vnd.in-toto+json 2 {}',
      );

      // Act
      const signature = await signer.sign(message);

      // Assess
      const calls = kms.commandCalls(SignCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.args[0].input).toEqual({
        KeyId: KMS_KEY_ID,
        SigningAlgorithm: 'ECDSA_SHA_256',
        MessageType: 'RAW',
        Message: message,
      });
      expect(verify('sha256', message, key.publicKey, signature)).toBe(true);
    });

    it('fails with SigningError when KMS returns a raw r||s signature', async () => {
      // Prepare: a valid signature, but not in the DER form KMS promises.
      const message = Buffer.from('payload');
      const der = sign('sha256', message, key.privateKey);
      kms.on(SignCommand).resolves({ Signature: new Uint8Array(toP1363(der)) });
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);

      // Act
      const act = signer.sign(message);

      // Assess
      await expect(act).rejects.toThrow(SigningError);
      await expect(act).rejects.toThrow(/no DER-encoded ECDSA signature/);
    });

    it('passes throttling on as ThrottledError for the state machine to retry', async () => {
      // Prepare
      kms.on(SignCommand).rejects(
        Object.assign(new Error('Rate exceeded'), {
          name: 'ThrottlingException',
        }),
      );
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);

      // Act
      const act = signer.sign(Buffer.from('payload'));

      // Assess
      await expect(act).rejects.toThrow(ThrottledError);
    });

    it('wraps any other KMS failure in SigningError with its cause', async () => {
      // Prepare
      const denied = Object.assign(new Error('not authorized'), {
        name: 'AccessDeniedException',
      });
      kms.on(SignCommand).rejects(denied);
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);

      // Act
      const error = await signer.sign(Buffer.from('payload')).catch((e) => e);

      // Assess
      expect(error).toBeInstanceOf(SigningError);
      expect(error.message).toContain(KMS_KEY_ID);
      expect(error.cause.name).toBe('AccessDeniedException');
    });
  });

  describe('publicKeyPem', () => {
    it('exports the DER SubjectPublicKeyInfo from GetPublicKey as PEM', async () => {
      // Prepare
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);

      // Act
      const pem = await signer.publicKeyPem();
      await signer.publicKeyPem();

      // Assess
      expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(createPublicKey(pem).equals(key.publicKey)).toBe(true);
      const calls = kms.commandCalls(GetPublicKeyCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.args[0].input).toEqual({ KeyId: KMS_KEY_ID });
    });

    it('refuses a key that is not an ECC_NIST_P256 signing key', async () => {
      // Prepare
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      kms.on(GetPublicKeyCommand).resolves({
        KeyId: KMS_KEY_ID,
        KeySpec: 'RSA_2048',
        KeyUsage: 'SIGN_VERIFY',
        SigningAlgorithms: ['RSASSA_PSS_SHA_256'],
        PublicKey: new Uint8Array(
          rsa.publicKey.export({ type: 'spki', format: 'der' }),
        ),
      });
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);

      // Act
      const act = signer.publicKeyPem();

      // Assess
      await expect(act).rejects.toThrow(SigningKeyError);
      await expect(act).rejects.toThrow(/RSA_2048.*ECC_NIST_P256/);
    });
  });
});

describeWithSystem(
  'KmsSigner over a long message',
  { tools: [TOOLS.openssl] },
  () => {
    beforeEach(() => {
      kms.reset();
    });

    it('sends the SHA-256 digest with MessageType DIGEST past 4096 bytes', async () => {
      // Prepare
      const key = p256();
      kmsSignsWith(kms, key);
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);
      const message = Buffer.alloc(KMS_RAW_MESSAGE_LIMIT + 1, 0x61);

      // Act
      const signature = await signer.sign(message);

      // Assess
      const input = kms.commandCalls(SignCommand)[0]?.args[0].input;
      expect(input?.MessageType).toBe('DIGEST');
      expect(input?.SigningAlgorithm).toBe('ECDSA_SHA_256');
      expect(Buffer.from(input?.Message ?? [])).toEqual(
        createHash('sha256').update(message).digest(),
      );
      // A verifier hashes the whole message itself: same signature scheme.
      expect(verify('sha256', message, key.publicKey, signature)).toBe(true);
    });
  },
);

describe('LocalKeySigner', () => {
  let dir: { path: string; remove: () => Promise<void> };

  beforeEach(async () => {
    dir = await tempDir('sbc-ami-keys-');
  });

  afterEach(async () => {
    await dir.remove();
  });

  describe('open', () => {
    it('creates a P-256 key readable only by its owner, and its public half', async () => {
      // Prepare
      const keyFile = join(dir.path, 'keys', 'signing-key.pem');

      // Act
      const signer = await LocalKeySigner.open(keyFile);

      // Assess
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      const publicPem = await readFile(signer.publicKeyFile, 'utf8');
      expect(signer.publicKeyFile).toBe(
        join(dir.path, 'keys', 'signing-key.pub.pem'),
      );
      expect(publicPem).toBe(await signer.publicKeyPem());
      const details = createPublicKey(publicPem).asymmetricKeyDetails;
      expect(details?.namedCurve).toBe('prime256v1');
      expect(signer.keyId).toMatch(/^sha256:[0-9a-f]{64}$/);
    });

    it('opens the same key again instead of replacing it', async () => {
      // Prepare
      const keyFile = join(dir.path, 'signing-key.pem');
      const first = await LocalKeySigner.open(keyFile);

      // Act
      const second = await LocalKeySigner.open(keyFile);

      // Assess
      expect(second.keyId).toBe(first.keyId);
      expect(await second.publicKeyPem()).toBe(await first.publicKeyPem());
    });

    it('refuses a key file other users can read, naming the file', async () => {
      // Prepare
      const keyFile = join(dir.path, 'signing-key.pem');
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await writeFile(
        keyFile,
        privateKey.export({ type: 'pkcs8', format: 'pem' }),
        {
          mode: 0o644,
        },
      );

      // Act
      const act = LocalKeySigner.open(keyFile);

      // Assess
      await expect(act).rejects.toThrow(SigningKeyError);
      await expect(act).rejects.toThrow(`${keyFile} is open to other users`);
    });

    it('refuses a key on another curve', async () => {
      // Prepare
      const keyFile = join(dir.path, 'signing-key.pem');
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      await writeFile(
        keyFile,
        privateKey.export({ type: 'pkcs8', format: 'pem' }),
        {
          mode: 0o600,
        },
      );

      // Act
      const act = LocalKeySigner.open(keyFile);

      // Assess
      await expect(act).rejects.toThrow(
        /secp384r1; signing needs an EC P-256 key/,
      );
    });

    it('refuses a file that is not a PEM key', async () => {
      // Prepare
      const keyFile = join(dir.path, 'signing-key.pem');
      await writeFile(keyFile, 'not a key\n', { mode: 0o600 });

      // Act
      const act = LocalKeySigner.open(keyFile);

      // Assess
      await expect(act).rejects.toThrow(`${keyFile} is not a PEM private key`);
    });
  });

  describe('sign', () => {
    it('signs DER ECDSA over SHA-256 that its public key verifies', async () => {
      // Prepare
      const signer = await LocalKeySigner.open(join(dir.path, 'k.pem'));
      const data = Buffer.from('DSSEv1 4 type 4 body');

      // Act
      const signature = await signer.sign(data);

      // Assess
      expect(isDerEcdsaSignature(signature)).toBe(true);
      const publicKey = createPublicKey(await signer.publicKeyPem());
      expect(verify('sha256', data, publicKey, signature)).toBe(true);
    });
  });
});

describe('isDerEcdsaSignature', () => {
  const key = p256();
  const der = sign('sha256', Buffer.from('x'), key.privateKey);

  it('accepts a DER signature and rejects its raw r||s form', () => {
    // Prepare
    const raw = toP1363(der);

    // Act
    const verdicts = [isDerEcdsaSignature(der), isDerEcdsaSignature(raw)];

    // Assess
    expect(raw).toHaveLength(64);
    expect(verdicts).toEqual([true, false]);
  });

  it.each([
    ['trailing bytes', (sig: Buffer) => Buffer.concat([sig, Buffer.from([0])])],
    ['a truncated signature', (sig: Buffer) => sig.subarray(0, sig.length - 1)],
    ['an empty signature', () => Buffer.alloc(0)],
    // SEQUENCE { INTEGER 0x00 0x01, INTEGER 0x01 }: needless leading zero.
    [
      'a non-minimal integer',
      () => Buffer.from('3007020200010201 01'.replace(/ /g, ''), 'hex'),
    ],
    // SEQUENCE { INTEGER -128, INTEGER 1 }
    ['a negative integer', () => Buffer.from('3006020180020101', 'hex')],
    // SEQUENCE { INTEGER 1, INTEGER 1, INTEGER 1 }
    ['three integers', () => Buffer.from('3009020101020101020101', 'hex')],
  ])('rejects %s', (_case, make) => {
    // Prepare
    const candidate = make(der);

    // Act
    const verdict = isDerEcdsaSignature(candidate);

    // Assess
    expect(verdict).toBe(false);
  });

  it('accepts minimal integers with and without a sign byte', () => {
    // Prepare: r = 0x0080 (needs the zero), s = 0x7f (must not have one).
    const candidate = Buffer.from('30070202008002017f', 'hex');

    // Act
    const verdict = isDerEcdsaSignature(candidate);

    // Assess
    expect(derIntegerLengths(candidate)).toEqual([2, 1]);
    expect(verdict).toBe(true);
  });
});
