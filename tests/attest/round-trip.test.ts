import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import {
  GetPublicKeyCommand,
  KMSClient,
  SignCommand,
} from '@aws-sdk/client-kms';
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import {
  attestImage,
  buildStatement,
  KmsSigner,
  parseS3Location,
  S3AttestationStore,
  SubjectMismatchError,
  signStatement,
  subjectDigest,
  verifyImage,
} from '../../functions/lib/attest/index.ts';
import { Ec2ImageStore } from '../../functions/lib/aws/image-store.ts';
import {
  TAG_ATTESTATION,
  TAG_BASE_IMAGE,
  TAG_SUBJECT_DIGEST,
} from '../../functions/lib/constants.ts';
import { SigningError } from '../../functions/lib/errors.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  BUCKET,
  ec2Holds,
  ec2Image,
  IMAGE_ID,
  KMS_KEY_ID,
  kmsSignsWith,
  OTHER_SNAPSHOT_ID,
  p256,
  provenanceInput,
  REGION,
  SNAPSHOT_IDS,
  s3Holds,
  subjectInput,
  tempDir,
} from './fixtures.ts';

const ec2 = mockClient(EC2Client);
const kms = mockClient(KMSClient);
const s3 = mockClient(S3Client);

/** The Sign task's wiring in AWS: KMS, the artifacts bucket, EC2. */
function awsPorts() {
  return {
    signer: new KmsSigner(new KMSClient({ region: REGION }), KMS_KEY_ID),
    store: new S3AttestationStore(new S3Client({ region: REGION }), {
      bucket: BUCKET,
      prefix: 'runs/run-42/',
    }),
    images: new Ec2ImageStore(new EC2Client({ region: REGION })),
  };
}

function resetMocks(): void {
  ec2.reset();
  kms.reset();
  s3.reset();
}

describe('attestImage', () => {
  beforeEach(resetMocks);

  it('signs with KMS, stores the envelope and tags the image', async () => {
    // Prepare
    const key = p256();
    kmsSignsWith(kms, key);
    const objects = s3Holds(s3);
    ec2Holds(ec2, ec2Image());
    const digest = subjectDigest(subjectInput());

    // Act
    const result = await attestImage({
      input: provenanceInput(),
      ...awsPorts(),
    });

    // Assess
    const location = `s3://${BUCKET}/runs/run-42/${IMAGE_ID}.intoto.json?versionId=v1`;
    expect(result).toEqual({ digest, location });

    const sign = kms.commandCalls(SignCommand);
    expect(sign).toHaveLength(1);
    expect(sign[0]?.args[0].input).toMatchObject({
      KeyId: KMS_KEY_ID,
      SigningAlgorithm: 'ECDSA_SHA_256',
      MessageType: 'RAW',
    });
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(1);

    const put = s3.commandCalls(PutObjectCommand);
    expect(put).toHaveLength(1);
    expect(put[0]?.args[0].input).toMatchObject({
      Bucket: BUCKET,
      Key: `runs/run-42/${IMAGE_ID}.intoto.json`,
    });
    expect(objects.size).toBe(1);

    const tags = ec2.commandCalls(CreateTagsCommand);
    expect(tags).toHaveLength(1);
    expect(tags[0]?.args[0].input).toEqual({
      Resources: [IMAGE_ID],
      Tags: [
        { Key: TAG_SUBJECT_DIGEST, Value: digest },
        { Key: TAG_ATTESTATION, Value: location },
      ],
    });
  });

  it('refuses to sign a subject that is not the live image', async () => {
    // Prepare
    kmsSignsWith(kms, p256());
    s3Holds(s3);
    ec2Holds(ec2, ec2Image());
    const input = provenanceInput(
      subjectInput({ snapshotIds: [SNAPSHOT_IDS[0] ?? '', OTHER_SNAPSHOT_ID] }),
    );

    // Act
    const act = attestImage({ input, ...awsPorts() });

    // Assess
    await expect(act).rejects.toThrow(SubjectMismatchError);
    await expect(act).rejects.toThrow(/snapshotIds: \[.*snap-0ccc.*\] -> \[/);
    expect(kms.commandCalls(SignCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });

  it('stores and tags nothing when the signature does not verify with the key', async () => {
    // Prepare: KMS signs with one key but reports another as its public key.
    kmsSignsWith(kms, p256());
    kms.on(GetPublicKeyCommand).resolves({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      SigningAlgorithms: ['ECDSA_SHA_256'],
      PublicKey: new Uint8Array(p256().spki),
    });
    s3Holds(s3);
    ec2Holds(ec2, ec2Image());

    // Act
    const act = attestImage({ input: provenanceInput(), ...awsPorts() });

    // Assess
    await expect(act).rejects.toThrow(SigningError);
    await expect(act).rejects.toThrow(/does not verify with key/);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
  });
});

describe('verifyImage', () => {
  let key: ReturnType<typeof p256>;
  let objects: Map<string, string>;
  let state: ReturnType<typeof ec2Holds>;
  let location: string;

  beforeEach(async () => {
    resetMocks();
    key = p256();
    kmsSignsWith(kms, key);
    objects = s3Holds(s3);
    state = ec2Holds(ec2, ec2Image());
    ({ location } = await attestImage({
      input: provenanceInput(),
      ...awsPorts(),
    }));
    ec2.resetHistory();
    s3.resetHistory();
  });

  function verify(publicKeyPem = key.publicKeyPem) {
    return verifyImage({
      imageId: IMAGE_ID,
      images: new Ec2ImageStore(new EC2Client({ region: REGION })),
      attestations: new S3AttestationStore(new S3Client({ region: REGION })),
      publicKeyPem,
      region: REGION,
    });
  }

  /** Replaces the stored object the location names. */
  function storeAtLocation(body: unknown): void {
    const { bucket, key: objectKey, versionId } = parseS3Location(location);
    objects.set(`${bucket}/${objectKey}@${versionId}`, JSON.stringify(body));
  }

  function storedEnvelope() {
    const { bucket, key: objectKey, versionId } = parseS3Location(location);
    return JSON.parse(objects.get(`${bucket}/${objectKey}@${versionId}`) ?? '');
  }

  function setTags(change: (tags: Record<string, string>) => void): void {
    const tags = Object.fromEntries(
      (state.image.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']),
    );
    change(tags);
    state.image = {
      ...state.image,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    };
  }

  it('holds for the attested image, reading the live image and the stored envelope', async () => {
    // Prepare: done in beforeEach.

    // Act
    const result = await verify();

    // Assess
    expect(result).toMatchObject({
      ok: true,
      reasons: [],
      imageId: IMAGE_ID,
      region: REGION,
      subjectDigest: subjectDigest(subjectInput()),
      taggedDigest: subjectDigest(subjectInput()),
      location,
      keyId: KMS_KEY_ID,
    });
    expect(result.statement).toEqual(buildStatement(provenanceInput()));
    expect(
      ec2.commandCalls(DescribeImagesCommand)[0]?.args[0].input,
    ).toMatchObject({ ImageIds: [IMAGE_ID] });
    expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: BUCKET,
      Key: `runs/run-42/${IMAGE_ID}.intoto.json`,
      VersionId: 'v1',
    });
  });

  it('fails on the signature when any field of the stored statement changes', async () => {
    // Prepare
    const envelope = storedEnvelope();
    const statement = JSON.parse(
      Buffer.from(envelope.payload, 'base64').toString('utf8'),
    );
    const changes = [
      ['subject', 0, 'digest', 'sha256'],
      ['subject', 0, 'annotations', 'snapshotIds', 1],
      [
        'predicate',
        'buildDefinition',
        'externalParameters',
        'profile',
        'location',
      ],
      [
        'predicate',
        'buildDefinition',
        'externalParameters',
        'template',
        'digest',
        'sha256',
      ],
      [
        'predicate',
        'buildDefinition',
        'externalParameters',
        'baseImage',
        'imageId',
      ],
      [
        'predicate',
        'buildDefinition',
        'resolvedDependencies',
        0,
        'digest',
        'gitCommit',
      ],
      ['predicate', 'runDetails', 'builder', 'id'],
      ['predicate', 'runDetails', 'metadata', 'finishedOn'],
      ['predicate', 'runDetails', 'byproducts', 0, 'content'],
      ['predicateType'],
    ] as const;

    for (const path of changes) {
      const changed = structuredClone(statement);
      let node = changed;
      for (const step of path.slice(0, -1)) {
        node = node[step];
      }
      node[path[path.length - 1] as string] += 'x';
      storeAtLocation({
        ...envelope,
        payload: Buffer.from(JSON.stringify(changed)).toString('base64'),
      });

      // Act
      const result = await verify();

      // Assess
      expect(result.ok, path.join('.')).toBe(false);
      expect(result.reasons, path.join('.')).toEqual([
        `the signature does not verify with the given public key (attestation ${location})`,
      ]);
      expect(result.statement).toBeUndefined();
    }
  });

  it('fails on the signature with a different key', async () => {
    // Prepare
    const other = p256();

    // Act
    const result = await verify(other.publicKeyPem);

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([
      `the signature does not verify with the given public key (attestation ${location})`,
    ]);
  });

  it('fails naming the snapshot when a snapshot id is swapped', async () => {
    // Prepare: the image now points at another snapshot.
    state.image = {
      ...state.image,
      BlockDeviceMappings: (state.image.BlockDeviceMappings ?? []).map((m) =>
        m.Ebs?.SnapshotId === SNAPSHOT_IDS[1]
          ? { ...m, Ebs: { ...m.Ebs, SnapshotId: OTHER_SNAPSHOT_ID } }
          : m,
      ),
    };
    const live = subjectInput({
      snapshotIds: [SNAPSHOT_IDS[0] ?? '', OTHER_SNAPSHOT_ID],
    });

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.subjectDigest).toBe(subjectDigest(live));
    expect(result.reasons).toEqual([
      `the ${TAG_SUBJECT_DIGEST} tag (${subjectDigest(subjectInput())}) is not ` +
        `the digest of the live image (${subjectDigest(live)})`,
      "the attestation's subject is not the live image (signed -> live: " +
        `snapshotIds: [${SNAPSHOT_IDS.join(', ')}] -> ` +
        `[${SNAPSHOT_IDS[0]}, ${OTHER_SNAPSHOT_ID}])`,
    ]);
  });

  it('fails when the subject digest tag is missing', async () => {
    // Prepare
    setTags((tags) => {
      delete tags[TAG_SUBJECT_DIGEST];
    });

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([
      `image ${IMAGE_ID} has no ${TAG_SUBJECT_DIGEST} tag`,
    ]);
  });

  it('fails when the attestation tag is missing', async () => {
    // Prepare
    setTags((tags) => {
      delete tags[TAG_ATTESTATION];
    });

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([
      `image ${IMAGE_ID} has no ${TAG_ATTESTATION} tag: its attestation cannot be found`,
    ]);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
  });

  it('fails when the base image tag is missing', async () => {
    // Prepare
    setTags((tags) => {
      delete tags[TAG_BASE_IMAGE];
    });

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([
      `image ${IMAGE_ID} has no ${TAG_BASE_IMAGE} tag: the subject cannot be recomputed`,
    ]);
  });

  it('fails naming the field when the base image tag is changed', async () => {
    // Prepare
    setTags((tags) => {
      tags[TAG_BASE_IMAGE] = 'ami-0fffffffffffffff0';
    });

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons[1]).toMatch(
      /baseImageId: ami-0deb12base0000001 -> ami-0fffffffffffffff0/,
    );
  });

  it('fails when a validly signed attestation is for another image', async () => {
    // Prepare: the right key signed it, but for a different image id.
    const other = buildStatement(
      provenanceInput(subjectInput({ imageId: 'ami-0ffffffffffffffff' })),
    );
    storeAtLocation(await signStatement(other, awsPorts().signer));

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([
      "the attestation's subject is not the live image (signed " +
        `${subjectDigest(subjectInput({ imageId: 'ami-0ffffffffffffffff' }))}, ` +
        `live ${subjectDigest(subjectInput())})`,
    ]);
  });

  it('fails when the stored attestation is gone', async () => {
    // Prepare
    objects.clear();

    // Act
    const result = await verify();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.reasons).toEqual([`no attestation at ${location}`]);
  });

  it('fails when the image does not exist', async () => {
    // Prepare
    state.image = { ...state.image, ImageId: 'ami-0gone' };

    // Act
    const result = await verify();

    // Assess
    expect(result).toMatchObject({
      ok: false,
      reasons: [`image ${IMAGE_ID} does not exist in ${REGION}`],
    });
  });
});

describeWithSystem(
  'attestImage over KMS raw limit',
  { tools: [TOOLS.openssl] },
  () => {
    beforeEach(resetMocks);

    it('signs a large statement through its digest, and it still verifies', async () => {
      // Prepare: a smoke report big enough to pass KMS's 4096-byte limit.
      const key = p256();
      kmsSignsWith(kms, key);
      s3Holds(s3);
      ec2Holds(ec2, ec2Image());
      const checks = Array.from({ length: 80 }, (_, i) => ({
        name: `closed-port-${1000 + i}`,
        passed: true,
        millis: i,
      }));
      const input = provenanceInput(subjectInput(), {
        smokeReport: { passed: true, checks },
      });

      // Act
      await attestImage({ input, ...awsPorts() });
      const result = await verifyImage({
        imageId: IMAGE_ID,
        images: new Ec2ImageStore(new EC2Client({ region: REGION })),
        attestations: new S3AttestationStore(new S3Client({ region: REGION })),
        publicKeyPem: key.publicKeyPem,
        region: REGION,
      });

      // Assess
      const sign = kms.commandCalls(SignCommand)[0]?.args[0].input;
      expect(sign?.MessageType).toBe('DIGEST');
      expect(sign?.Message).toHaveLength(32);
      expect(result.reasons).toEqual([]);
      expect(result.ok).toBe(true);
    });
  },
);

describe('sbc-ami verify (AWS)', () => {
  let key: ReturnType<typeof p256>;
  let dir: { path: string; remove: () => Promise<void> };
  let out: string[];
  let err: string[];

  beforeEach(async () => {
    resetMocks();
    key = p256();
    kmsSignsWith(kms, key);
    s3Holds(s3);
    ec2Holds(ec2, ec2Image());
    await attestImage({ input: provenanceInput(), ...awsPorts() });
    ec2.resetHistory();
    kms.resetHistory();
    s3.resetHistory();
    dir = await tempDir('sbc-ami-verify-');
    out = [];
    err = [];
    vi.spyOn(console, 'log').mockImplementation((line) => {
      out.push(String(line));
    });
    vi.spyOn(console, 'error').mockImplementation((line) => {
      err.push(String(line));
    });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await dir.remove();
  });

  it('exits 0 with the KMS public key and prints what was verified', async () => {
    // Prepare
    const argv = [
      'verify',
      IMAGE_ID,
      '--kms-key-id',
      KMS_KEY_ID,
      '--region',
      REGION,
    ];

    // Act
    const code = await main(['node', 'sbc-ami', ...argv]);

    // Assess
    expect(code).toBe(0);
    expect(out[0]).toBe(`verified: ${IMAGE_ID} (${REGION})`);
    expect(out.join('\n')).toContain(`sha256 ${subjectDigest(subjectInput())}`);
    expect(kms.commandCalls(GetPublicKeyCommand)[0]?.args[0].input).toEqual({
      KeyId: KMS_KEY_ID,
    });
    expect(
      ec2.commandCalls(DescribeImagesCommand)[0]?.args[0].input,
    ).toMatchObject({ ImageIds: [IMAGE_ID] });
    expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).toMatchObject({
      Bucket: BUCKET,
      VersionId: 'v1',
    });
  });

  it('exits 1 with the reason when the key file holds another key', async () => {
    // Prepare
    const file = join(dir.path, 'other.pub.pem');
    await writeFile(file, p256().publicKeyPem);

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'verify',
      IMAGE_ID,
      '--key',
      file,
      '--region',
      REGION,
      '--json',
    ]);

    // Assess
    expect(code).toBe(1);
    const result = JSON.parse(out.join('\n'));
    expect(result.ok).toBe(false);
    expect(result.reasons[0]).toMatch(/signature does not verify/);
  });

  it('exits 2 naming the flag when no key is given', async () => {
    // Prepare
    const argv = ['node', 'sbc-ami', 'verify', IMAGE_ID, '--region', REGION];

    // Act
    const code = await main(argv);

    // Assess
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/--key FILE or --kms-key-id ID/);
  });

  it('exits 2 naming the file when the key file cannot be read', async () => {
    // Prepare
    const file = join(dir.path, 'missing.pem');

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'verify',
      IMAGE_ID,
      '--key',
      file,
      '--region',
      REGION,
    ]);

    // Assess
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(`--key: cannot read ${file} (ENOENT)`);
  });

  it('exits 2 naming the file when it is not a PEM public key', async () => {
    // Prepare
    const file = join(dir.path, 'garbage.pem');
    await writeFile(file, 'hello\n');

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'verify',
      IMAGE_ID,
      '--key',
      file,
      '--region',
      REGION,
    ]);

    // Assess
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(`--key: ${file} is not a PEM public key`);
  });

  it('exits 2 naming the flag when KMS does not know the key', async () => {
    // Prepare
    kms.on(GetPublicKeyCommand).rejects(
      Object.assign(new Error('Key not found'), {
        name: 'NotFoundException',
      }),
    );

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'verify',
      IMAGE_ID,
      '--kms-key-id',
      'alias/nope',
      '--region',
      REGION,
    ]);

    // Assess
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(
      /--kms-key-id alias\/nope: .*NotFoundException/,
    );
  });
});
