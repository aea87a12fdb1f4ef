import { execFile } from 'node:child_process';
import {
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
} from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  type EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import {
  GetPublicKeyCommand,
  type KMSClient,
  SignCommand,
} from '@aws-sdk/client-kms';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ASN1Obj } from '@sigstore/core';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import type { ImageSubjectInput } from '../../functions/lib/attest/index.ts';
import type { ProvenanceInput } from '../../functions/lib/attest/statement.ts';
import { TAG_BASE_IMAGE } from '../../functions/lib/constants.ts';
import type { ImageRecord } from '../../functions/lib/ports.ts';

const run = promisify(execFile);

export const REGION = 'eu-west-1';
export const IMAGE_ID = 'ami-0a1b2c3d4e5f60718';
export const BASE_IMAGE_ID = 'ami-0deb12base0000001';
export const SNAPSHOT_IDS = [
  'snap-0aaaaaaaaaaaaaaa1',
  'snap-0bbbbbbbbbbbbbbb2',
];
export const OTHER_SNAPSHOT_ID = 'snap-0ccccccccccccccc3';
export const KMS_KEY_ID =
  'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
export const BUCKET = 'sbc-ami-artifacts-111122223333';

/** The live image as the port sees it: two EBS snapshots, one ephemeral. */
export function imageRecord(overrides: Partial<ImageRecord> = {}): ImageRecord {
  return {
    imageId: IMAGE_ID,
    name: 'sbc-ami-genesys-eu-20260101T000000Z',
    state: 'available',
    createdAt: '2026-01-01T00:30:00.000Z',
    architecture: 'x86_64',
    ownerId: '111122223333',
    public: false,
    imdsSupport: 'v2.0',
    tags: { [TAG_BASE_IMAGE]: BASE_IMAGE_ID },
    blockDevices: [
      {
        deviceName: '/dev/xvdb',
        snapshotId: SNAPSHOT_IDS[1],
        encrypted: true,
        volumeType: 'gp3',
      },
      { deviceName: '/dev/sdc' },
      {
        deviceName: '/dev/xvda',
        snapshotId: SNAPSHOT_IDS[0],
        encrypted: true,
        volumeType: 'gp3',
      },
    ],
    ...overrides,
  };
}

/** The same image as EC2's DescribeImages returns it. */
export function ec2Image(record: ImageRecord = imageRecord()): Image {
  return {
    ImageId: record.imageId,
    Name: record.name,
    State: 'available',
    CreationDate: record.createdAt,
    Architecture: 'x86_64',
    OwnerId: record.ownerId,
    Public: false,
    ImdsSupport: 'v2.0',
    Tags: Object.entries(record.tags).map(([Key, Value]) => ({ Key, Value })),
    BlockDeviceMappings: record.blockDevices.map((device) =>
      device.snapshotId === undefined
        ? { DeviceName: device.deviceName, VirtualName: 'ephemeral0' }
        : {
            DeviceName: device.deviceName,
            Ebs: {
              SnapshotId: device.snapshotId,
              Encrypted: device.encrypted,
              VolumeType: 'gp3',
            },
          },
    ),
  };
}

export function subjectInput(
  overrides: Partial<ImageSubjectInput> = {},
): ImageSubjectInput {
  return {
    imageId: IMAGE_ID,
    region: REGION,
    snapshotIds: [...SNAPSHOT_IDS],
    architecture: 'x86_64',
    baseImageId: BASE_IMAGE_ID,
    ...overrides,
  };
}

export const SMOKE_REPORT = {
  target: '198.18.0.2',
  passed: true,
  checks: [
    { name: 'sip-options-udp', port: 5060, passed: true, millis: 12 },
    { name: 'sip-options-tcp', port: 5060, passed: true, millis: 15 },
    { name: 'sip-options-tls', port: 5061, passed: true, millis: 41 },
    { name: 'tls-version', value: 'TLSv1.2', passed: true },
    { name: 'closed-port-22', passed: true },
  ],
};

export function provenanceInput(
  subject: ImageSubjectInput = subjectInput(),
  overrides: Partial<ProvenanceInput> = {},
): ProvenanceInput {
  return {
    subject,
    builderVersion: '0.1.0',
    profile: {
      location: `s3://${BUCKET}/profiles/genesys-eu.json`,
      versionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY',
      digest: 'a'.repeat(64),
    },
    templateDigest: `sha256:${'b'.repeat(64)}`,
    sourceRevision: 'c'.repeat(40),
    buildId: 'sbc-ami-build:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    execution: 'arn:aws:states:eu-west-1:111122223333:execution:sbc-ami:run-42',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:40:00.000Z',
    internalParameters: { instanceType: 't3.small' },
    smokeReport: SMOKE_REPORT,
    ...overrides,
  };
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  spki: Buffer;
}

export function p256(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
  });
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    spki: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** A temporary folder and its removal, for `afterEach`/`afterAll`. */
export async function tempDir(
  prefix: string,
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * ECDSA P-256 over a precomputed SHA-256 digest, as KMS does for
 * `MessageType: DIGEST`. node:crypto always hashes what it signs, so this
 * asks openssl, which signs its input as the digest.
 */
export async function signDigestWithOpenssl(
  digest: Uint8Array,
  key: KeyObject,
): Promise<Buffer> {
  const dir = await tempDir('sbc-ami-kms-');
  try {
    const keyFile = join(dir.path, 'key.pem');
    const input = join(dir.path, 'digest.bin');
    const output = join(dir.path, 'sig.der');
    await writeFile(keyFile, key.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    await writeFile(input, digest);
    await run('openssl', [
      'pkeyutl',
      '-sign',
      '-inkey',
      keyFile,
      '-in',
      input,
      '-out',
      output,
    ]);
    return await readFile(output);
  } finally {
    await dir.remove();
  }
}

/**
 * KMS as the mock plays it: `Sign` with a real P-256 key (DER, as KMS
 * returns it), `GetPublicKey` with its SubjectPublicKeyInfo.
 */
export function kmsSignsWith(
  kms: AwsClientStub<KMSClient>,
  key: KeyPair,
): void {
  kms.on(SignCommand).callsFake(async (input: SignCommand['input']) => {
    const message = input.Message as Uint8Array;
    const signature =
      input.MessageType === 'DIGEST'
        ? await signDigestWithOpenssl(message, key.privateKey)
        : nodeSign('sha256', message, key.privateKey);
    return {
      KeyId: KMS_KEY_ID,
      Signature: new Uint8Array(signature),
      SigningAlgorithm: 'ECDSA_SHA_256',
    };
  });
  kms.on(GetPublicKeyCommand).resolves({
    KeyId: KMS_KEY_ID,
    KeySpec: 'ECC_NIST_P256',
    KeyUsage: 'SIGN_VERIFY',
    SigningAlgorithms: ['ECDSA_SHA_256'],
    PublicKey: new Uint8Array(key.spki),
  });
}

/** S3 as a map of object bodies; versioned, like the artifacts bucket. */
export function s3Holds(s3: AwsClientStub<S3Client>): Map<string, string> {
  const objects = new Map<string, string>();
  let version = 0;
  s3.on(PutObjectCommand).callsFake((input: PutObjectCommand['input']) => {
    version += 1;
    const versionId = `v${version}`;
    objects.set(
      `${input.Bucket}/${input.Key}@${versionId}`,
      String(input.Body),
    );
    return { VersionId: versionId };
  });
  s3.on(GetObjectCommand).callsFake((input: GetObjectCommand['input']) => {
    const body = objects.get(`${input.Bucket}/${input.Key}@${input.VersionId}`);
    if (body === undefined) {
      throw Object.assign(new Error('The specified key does not exist.'), {
        name: 'NoSuchKey',
      });
    }
    // The SDK's streaming body; the store only calls transformToString.
    const stream = { transformToString: async () => body };
    return { Body: stream as unknown as GetObjectCommandOutput['Body'] };
  });
  return objects;
}

/** One EC2 image whose tags CreateTags changes, as EC2 would. */
export function ec2Holds(
  ec2: AwsClientStub<EC2Client>,
  image: Image,
): { image: Image } {
  const state = { image: structuredClone(image) };
  ec2
    .on(DescribeImagesCommand)
    .callsFake((input: DescribeImagesCommand['input']) => ({
      Images: input.ImageIds?.includes(state.image.ImageId ?? '')
        ? [state.image]
        : [],
    }));
  ec2.on(CreateTagsCommand).callsFake((input: CreateTagsCommand['input']) => {
    const tags = new Map(
      (state.image.Tags ?? []).map((tag) => [tag.Key, tag.Value]),
    );
    for (const tag of input.Tags ?? []) {
      tags.set(tag.Key, tag.Value);
    }
    state.image = {
      ...state.image,
      Tags: [...tags].map(([Key, Value]) => ({ Key, Value })),
    };
    return {};
  });
  return state;
}

/** The byte lengths of r and s in a DER ECDSA signature. */
export function derIntegerLengths(signature: Uint8Array): [number, number] {
  const [r, s] = ASN1Obj.parseBuffer(Buffer.from(signature)).subs;
  return [r?.value.length ?? 0, s?.value.length ?? 0];
}

/** A DER signature rewritten as IEEE P1363 `r || s` (64 bytes). */
export function toP1363(signature: Uint8Array): Buffer {
  const integers = ASN1Obj.parseBuffer(Buffer.from(signature)).subs;
  return Buffer.concat(
    integers.map((integer) => {
      const value = integer.value.subarray(
        integer.value.length > 32 ? integer.value.length - 32 : 0,
      );
      return Buffer.concat([Buffer.alloc(32 - value.length), value]);
    }),
  );
}

/**
 * DSSE's pre-authentication encoding written from the specification, apart
 * from the one in @sigstore/core that the code under test uses:
 * "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII
 * decimal bytes.
 */
export function independentPae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${body.length} `, 'ascii'),
    body,
  ]);
}
