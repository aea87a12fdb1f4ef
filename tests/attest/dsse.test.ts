import { execFile } from 'node:child_process';
import { sign, verify } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  buildStatement,
  type Envelope,
  IN_TOTO_PAYLOAD_TYPE,
  KmsSigner,
  parseEnvelope,
  type Statement,
  signStatement,
  verifyEnvelope,
} from '../../functions/lib/attest/index.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  derIntegerLengths,
  independentPae,
  KMS_KEY_ID,
  kmsSignsWith,
  p256,
  provenanceInput,
  tempDir,
  toP1363,
} from './fixtures.ts';

const run = promisify(execFile);
const kms = mockClient(KMSClient);

/** The PAE of a statement exactly as `signStatement` will sign it. */
async function paeOf(statement: Statement): Promise<Buffer> {
  const captured: Buffer[] = [];
  await signStatement(statement, {
    keyId: 'capture',
    sign: async (data) => {
      captured.push(Buffer.from(data));
      return new Uint8Array();
    },
    publicKeyPem: async () => '',
  });
  return captured[0] ?? Buffer.alloc(0);
}

/** Signs until a DER signature has the shape asked for (1 in ~128 at worst). */
function signUntil(
  data: Buffer,
  key: ReturnType<typeof p256>,
  shape: (lengths: [number, number]) => boolean,
): Buffer {
  for (let attempt = 0; attempt < 20_000; attempt += 1) {
    const signature = sign('sha256', data, key.privateKey);
    if (shape(derIntegerLengths(signature))) {
      return signature;
    }
  }
  throw new Error('no signature of that shape in 20000 attempts');
}

function withPayload(envelope: Envelope, statement: unknown): Envelope {
  return {
    ...envelope,
    payload: Buffer.from(JSON.stringify(statement)).toString('base64'),
  };
}

/** Every leaf of a JSON value, as a path of keys and indexes. */
function leafPaths(
  value: unknown,
  path: (string | number)[] = [],
): (string | number)[][] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => leafPaths(item, [...path, index]));
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      leafPaths(item, [...path, key]),
    );
  }
  return [path];
}

function changedAt(value: unknown, path: (string | number)[]): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const step of path.slice(0, -1)) {
    node = node[step] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1] as string | number;
  const leaf = node[last];
  node[last] =
    typeof leaf === 'number'
      ? leaf + 1
      : typeof leaf === 'boolean'
        ? !leaf
        : `${String(leaf)}x`;
  return copy;
}

describe('signStatement', () => {
  beforeEach(() => {
    kms.reset();
  });

  it('wraps the canonical statement in a DSSE envelope with the KMS signature', async () => {
    // Prepare
    const key = p256();
    kmsSignsWith(kms, key);
    const statement = buildStatement(provenanceInput());

    // Act
    const envelope = await signStatement(
      statement,
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );

    // Assess
    const payload = Buffer.from(envelope.payload, 'base64');
    expect(envelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(JSON.parse(payload.toString('utf8'))).toEqual(statement);
    expect(envelope.signatures).toHaveLength(1);
    expect(envelope.signatures[0]?.keyid).toBe(KMS_KEY_ID);
    const sent = kms.commandCalls(SignCommand)[0]?.args[0].input;
    expect(Buffer.from(sent?.Message ?? [])).toEqual(
      independentPae(IN_TOTO_PAYLOAD_TYPE, payload),
    );
  });
});

describe('verifyEnvelope', () => {
  beforeEach(() => {
    kms.reset();
  });

  it.each([
    [
      'r or s has a leading zero byte (33 bytes)',
      ([r, s]: [number, number]) => r === 33 || s === 33,
    ],
    [
      'r or s is shorter than 32 bytes',
      ([r, s]: [number, number]) => r < 32 || s < 32,
    ],
    [
      'r and s are both 32 bytes',
      ([r, s]: [number, number]) => r === 32 && s === 32,
    ],
  ])('accepts the DER signature from KMS when %s', async (_shape, shape) => {
    // Prepare: KMS returns a signature of this shape, exactly as is.
    const key = p256();
    const statement = buildStatement(provenanceInput());
    const signature = signUntil(await paeOf(statement), key, shape);
    kms.on(SignCommand).resolves({ Signature: new Uint8Array(signature) });

    // Act
    const envelope = await signStatement(
      statement,
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );
    const check = verifyEnvelope(envelope, key.publicKeyPem);

    // Assess
    expect(Buffer.from(envelope.signatures[0]?.sig ?? '', 'base64')).toEqual(
      signature,
    );
    expect(check.ok).toBe(true);
  });

  it('refuses a raw r||s signature, saying it is not DER', async () => {
    // Prepare
    const key = p256();
    kmsSignsWith(kms, key);
    const envelope = await signStatement(
      buildStatement(provenanceInput()),
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );
    const der = Buffer.from(envelope.signatures[0]?.sig ?? '', 'base64');
    const raw: Envelope = {
      ...envelope,
      signatures: [{ keyid: KMS_KEY_ID, sig: toP1363(der).toString('base64') }],
    };

    // Act
    const check = verifyEnvelope(raw, key.publicKeyPem);

    // Assess
    expect(check).toEqual({
      ok: false,
      reason:
        'the signature does not verify with the given public key ' +
        '(1 not a DER-encoded ECDSA signature, as from a raw r||s)',
    });
  });

  it('fails when any field of the statement changes after signing', async () => {
    // Prepare
    const key = p256();
    kmsSignsWith(kms, key);
    const statement = buildStatement(provenanceInput());
    const envelope = await signStatement(
      statement,
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );
    const paths = leafPaths(statement);

    // Act
    const failures = paths.map((path) => ({
      path: path.join('.'),
      check: verifyEnvelope(
        withPayload(envelope, changedAt(statement, path)),
        key.publicKeyPem,
      ),
    }));

    // Assess
    expect(paths.length).toBeGreaterThan(20);
    for (const { path, check } of failures) {
      expect(check, path).toEqual({
        ok: false,
        reason: 'the signature does not verify with the given public key',
      });
    }
  });

  it('fails with another key', async () => {
    // Prepare
    kmsSignsWith(kms, p256());
    const envelope = await signStatement(
      buildStatement(provenanceInput()),
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );

    // Act
    const check = verifyEnvelope(envelope, p256().publicKeyPem);

    // Assess
    expect(check.ok).toBe(false);
  });

  it('fails when the payload type changes', async () => {
    // Prepare
    const key = p256();
    kmsSignsWith(kms, key);
    const envelope = await signStatement(
      buildStatement(provenanceInput()),
      new KmsSigner(new KMSClient({}), KMS_KEY_ID),
    );

    // Act
    const check = verifyEnvelope(
      { ...envelope, payloadType: 'application/json' },
      key.publicKeyPem,
    );

    // Assess
    expect(check).toMatchObject({ ok: false, reason: /payload type/ });
  });

  it('fails with a reason when the key is not PEM', () => {
    // Prepare
    const envelope: Envelope = {
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: 'e30=',
      signatures: [{ keyid: '', sig: 'AAAA' }],
    };

    // Act
    const check = verifyEnvelope(envelope, 'not a key');

    // Assess
    expect(check).toEqual({
      ok: false,
      reason: 'the public key is not a PEM public key',
    });
  });
});

describe('parseEnvelope', () => {
  it('names the source and the field that is wrong', () => {
    // Prepare
    const value = { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: 'e30=' };

    // Act
    const act = () => parseEnvelope(value, 's3://bucket/ami.intoto.json');

    // Assess
    expect(act).toThrow(
      /s3:\/\/bucket\/ami.intoto.json is not a DSSE envelope: signatures:/,
    );
  });
});

describeWithSystem(
  'a DSSE verifier outside this project',
  { tools: [TOOLS.openssl] },
  () => {
    beforeEach(() => {
      kms.reset();
    });

    // Independent of the code under test: the PAE is built from the DSSE
    // specification (fixtures), and the signature is checked by openssl
    // and by node:crypto given only the PEM public key.
    it('accepts the envelope given only the PEM public key', async () => {
      // Prepare
      const key = p256();
      kmsSignsWith(kms, key);
      const signer = new KmsSigner(new KMSClient({}), KMS_KEY_ID);
      const envelope = await signStatement(
        buildStatement(provenanceInput()),
        signer,
      );
      const pem = await signer.publicKeyPem();
      const dir = await tempDir('sbc-ami-dsse-');

      try {
        const pae = independentPae(
          envelope.payloadType,
          Buffer.from(envelope.payload, 'base64'),
        );
        const signature = Buffer.from(
          envelope.signatures[0]?.sig ?? '',
          'base64',
        );
        await writeFile(join(dir.path, 'key.pub.pem'), pem);
        await writeFile(join(dir.path, 'pae.bin'), pae);
        await writeFile(join(dir.path, 'sig.der'), signature);

        // Act
        const openssl = await run('openssl', [
          'dgst',
          '-sha256',
          '-verify',
          join(dir.path, 'key.pub.pem'),
          '-signature',
          join(dir.path, 'sig.der'),
          join(dir.path, 'pae.bin'),
        ]);
        const node = verify('sha256', pae, pem, signature);

        // Assess
        expect(openssl.stdout.trim()).toBe('Verified OK');
        expect(node).toBe(true);
      } finally {
        await dir.remove();
      }
    });

    it('rejects the envelope once its payload changes', async () => {
      // Prepare
      const key = p256();
      kmsSignsWith(kms, key);
      const envelope = await signStatement(
        buildStatement(provenanceInput()),
        new KmsSigner(new KMSClient({}), KMS_KEY_ID),
      );
      const payload = Buffer.from(envelope.payload, 'base64');
      payload[payload.length - 2] = 0x20;
      const dir = await tempDir('sbc-ami-dsse-');

      try {
        await writeFile(join(dir.path, 'key.pub.pem'), key.publicKeyPem);
        await writeFile(
          join(dir.path, 'pae.bin'),
          independentPae(envelope.payloadType, payload),
        );
        await writeFile(
          join(dir.path, 'sig.der'),
          Buffer.from(envelope.signatures[0]?.sig ?? '', 'base64'),
        );

        // Act
        const openssl = run('openssl', [
          'dgst',
          '-sha256',
          '-verify',
          join(dir.path, 'key.pub.pem'),
          '-signature',
          join(dir.path, 'sig.der'),
          join(dir.path, 'pae.bin'),
        ]);

        // Assess
        await expect(openssl).rejects.toMatchObject({
          stdout: expect.stringContaining('Verification failure'),
        });
      } finally {
        await dir.remove();
      }
    });
  },
);
