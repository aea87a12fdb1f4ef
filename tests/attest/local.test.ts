import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import {
  attestImage,
  describeImage,
  LOCAL_REGION,
  LocalAttestationStore,
  LocalKeySigner,
  localKeyFiles,
  SubjectMismatchError,
  subjectDigest,
  verifyImage,
} from '../../functions/lib/attest/index.ts';
import {
  TAG_ATTESTATION,
  TAG_BASE_IMAGE,
  TAG_IMAGE_DIGEST,
  TAG_SUBJECT_DIGEST,
} from '../../functions/lib/constants.ts';
import {
  LOCAL_OWNER_ID,
  LocalImageStore,
  SNAPSHOT_FILE,
} from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import {
  BASE_IMAGE_ID,
  imageRecord,
  p256,
  provenanceInput,
  tempDir,
} from './fixtures.ts';

const LOCAL_IMAGE_ID = 'sbc-ami-local-0a1b2c3d';

describe('local signing and verification', () => {
  let home: { path: string; remove: () => Promise<void> };
  let savedHome: string | undefined;
  let paths: LocalPaths;
  let images: LocalImageStore;
  let out: string[];
  let err: string[];

  beforeEach(async () => {
    home = await tempDir('sbc-ami-home-');
    savedHome = process.env.SBC_AMI_HOME;
    process.env.SBC_AMI_HOME = home.path;
    paths = localPaths();
    images = new LocalImageStore(paths);
    await images.putImage(
      imageRecord({
        imageId: LOCAL_IMAGE_ID,
        ownerId: LOCAL_OWNER_ID,
        blockDevices: [{ deviceName: 'root', snapshotId: 'snap-local-1' }],
      }),
    );
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
    if (savedHome === undefined) {
      delete process.env.SBC_AMI_HOME;
    } else {
      process.env.SBC_AMI_HOME = savedHome;
    }
    await home.remove();
  });

  /** The local Sign step: key from the local home, file store, tags. */
  async function signLocally() {
    const signer = await LocalKeySigner.open(localKeyFiles(paths).privateKey);
    const image = await images.describeImage(LOCAL_IMAGE_ID);
    if (image === undefined) {
      throw new Error('fixture image missing');
    }
    const subject = describeImage(image, LOCAL_REGION);
    const result = await attestImage({
      input: provenanceInput(subject, {
        profile: { location: '/srv/profiles/lab.json', digest: 'd'.repeat(64) },
      }),
      signer,
      store: new LocalAttestationStore(paths),
      images,
    });
    return { signer, subject, result };
  }

  it('signs with a new local key, stores the envelope and tags the image', async () => {
    // Prepare: the local home has no key yet.
    const keyFiles = localKeyFiles(paths);

    // Act
    const { subject, result } = await signLocally();

    // Assess
    expect((await stat(keyFiles.privateKey)).mode & 0o777).toBe(0o600);
    expect(result.digest).toBe(subjectDigest(subject));
    expect(fileURLToPath(result.location)).toBe(
      join(paths.attestations, `${LOCAL_IMAGE_ID}.intoto.json`),
    );
    const stored = JSON.parse(
      await readFile(fileURLToPath(result.location), 'utf8'),
    );
    expect(stored.payloadType).toBe('application/vnd.in-toto+json');
    const image = await images.describeImage(LOCAL_IMAGE_ID);
    expect(image?.tags[TAG_SUBJECT_DIGEST]).toBe(result.digest);
    expect(image?.tags[TAG_ATTESTATION]).toBe(result.location);
  });

  it('verifies with the public key file written beside the key', async () => {
    // Prepare
    await signLocally();
    const publicKeyPem = await readFile(localKeyFiles(paths).publicKey, 'utf8');

    // Act
    const result = await verifyImage({
      imageId: LOCAL_IMAGE_ID,
      images,
      attestations: new LocalAttestationStore(paths),
      publicKeyPem,
      region: LOCAL_REGION,
    });

    // Assess
    expect(result.reasons).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.statement?.subject[0]?.name).toBe(`local/${LOCAL_IMAGE_ID}`);
  });

  describe('sbc-ami verify --local', () => {
    it('exits 0 with the local public key by default', async () => {
      // Prepare
      const { result } = await signLocally();

      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'verify',
        '--local',
        LOCAL_IMAGE_ID,
      ]);

      // Assess
      expect(err).toEqual([]);
      expect(code).toBe(0);
      expect(out[0]).toBe(`verified: ${LOCAL_IMAGE_ID} (local)`);
      expect(out.join('\n')).toContain(`sha256 ${result.digest}`);
      expect(out.join('\n')).toContain('/srv/profiles/lab.json');
    });

    it('exits 1 with the reason when the stored attestation was edited', async () => {
      // Prepare
      const { result } = await signLocally();
      const file = fileURLToPath(result.location);
      const envelope = JSON.parse(await readFile(file, 'utf8'));
      const statement = JSON.parse(
        Buffer.from(envelope.payload, 'base64').toString(),
      );
      statement.predicate.runDetails.builder.id = 'urn:someone-else';
      envelope.payload = Buffer.from(JSON.stringify(statement)).toString(
        'base64',
      );
      await writeFile(file, JSON.stringify(envelope));

      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'verify',
        '--local',
        LOCAL_IMAGE_ID,
      ]);

      // Assess
      expect(code).toBe(1);
      expect(err[0]).toBe(`NOT verified: ${LOCAL_IMAGE_ID} (local)`);
      expect(err[1]).toMatch(
        /signature does not verify with the given public key/,
      );
    });

    it('exits 1 with --json and a reason when verified with another key', async () => {
      // Prepare
      await signLocally();
      const file = join(home.path, 'other.pub.pem');
      await writeFile(file, p256().publicKeyPem);

      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'verify',
        '--local',
        LOCAL_IMAGE_ID,
        '--key',
        file,
        '--json',
      ]);

      // Assess
      expect(code).toBe(1);
      const printed = JSON.parse(out.join('\n'));
      expect(printed).toMatchObject({
        ok: false,
        imageId: LOCAL_IMAGE_ID,
        region: 'local',
      });
      expect(printed.reasons).toHaveLength(1);
    });

    it('exits 2 naming the file when there is no local key', async () => {
      // Prepare: an image but no key in this home.
      const missing = localKeyFiles(paths).publicKey;

      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'verify',
        '--local',
        LOCAL_IMAGE_ID,
      ]);

      // Assess
      expect(code).toBe(2);
      expect(err.join('\n')).toContain(`no local public key at ${missing}`);
    });

    it('exits 2 when --region is given with --local', async () => {
      // Prepare
      const argv = [
        'verify',
        '--local',
        LOCAL_IMAGE_ID,
        '--region',
        'eu-west-1',
      ];

      // Act
      const code = await main(['node', 'sbc-ami', ...argv]);

      // Assess
      expect(code).toBe(2);
      expect(err.join('\n')).toMatch(/--region does not apply to --local/);
    });
  });

  describe('an image with contents (a snapshot file)', () => {
    const IMAGE = 'img-0a1b2c3d4e5f6a7b';
    const SNAPSHOT = 'snap-0a1b2c3d4e5f6a7b';
    let tar: string;

    beforeEach(async () => {
      const dir = images.snapshotDir(SNAPSHOT);
      await mkdir(dir, { recursive: true });
      tar = join(dir, SNAPSHOT_FILE);
      await writeFile(tar, 'a packed root filesystem');
      const digest = createHash('sha256')
        .update('a packed root filesystem')
        .digest('hex');
      await images.putImage(
        imageRecord({
          imageId: IMAGE,
          ownerId: LOCAL_OWNER_ID,
          tags: {
            [TAG_BASE_IMAGE]: BASE_IMAGE_ID,
            [TAG_IMAGE_DIGEST]: `sha256:${digest}`,
          },
          blockDevices: [{ deviceName: '/dev/xvda', snapshotId: SNAPSHOT }],
        }),
      );
    });

    /** The local Sign step, hashing the contents as local mode does. */
    async function signContents() {
      const signer = await LocalKeySigner.open(localKeyFiles(paths).privateKey);
      const image = await images.describeImage(IMAGE);
      if (image === undefined) {
        throw new Error('fixture image missing');
      }
      return attestImage({
        input: provenanceInput(describeImage(image, LOCAL_REGION)),
        signer,
        store: new LocalAttestationStore(paths),
        images,
        contents: (record) => images.hashContents(record),
      });
    }

    const verify = () => main(['node', 'sbc-ami', 'verify', '--local', IMAGE]);

    it('verify --local hashes the snapshot file again and says it did', async () => {
      // Prepare
      await signContents();
      const digest = createHash('sha256').update(await readFile(tar));

      // Act
      const code = await verify();

      // Assess
      expect(err).toEqual([]);
      expect(code).toBe(0);
      expect(out.join('\n')).toContain(
        `${tar} hashed again now: sha256 ${digest.digest('hex')}, the ` +
          'signed digest',
      );
    });

    it('verify --local exits 1 naming the file when a byte is appended to it', async () => {
      // Prepare
      await signContents();
      await appendFile(tar, 'x');

      // Act
      const code = await verify();

      // Assess
      expect(code).toBe(1);
      expect(err[0]).toBe(`NOT verified: ${IMAGE} (local)`);
      expect(err.slice(1).join('\n')).toContain(tar);
      expect(err.slice(1).join('\n')).toMatch(/not the signed sha256/);
    });

    it('verify --local exits 1 when the digest tag follows changed contents', async () => {
      // Prepare: the tar changed, and its tag with it.
      await signContents();
      await appendFile(tar, 'x');
      const changed = createHash('sha256').update(await readFile(tar));
      await images.tagImage(IMAGE, {
        [TAG_IMAGE_DIGEST]: `sha256:${changed.digest('hex')}`,
      });

      // Act
      const code = await verify();

      // Assess
      expect(code).toBe(1);
      expect(err.join('\n')).toMatch(/contentDigest: [0-9a-f]{64} -> /);
    });

    it('refuses to sign contents that changed since the build hashed them', async () => {
      // Prepare
      await appendFile(tar, 'x');

      // Act
      const act = signContents();

      // Assess
      await expect(act).rejects.toThrow(SubjectMismatchError);
      await expect(signContents()).rejects.toThrow(tar);
      const image = await images.describeImage(IMAGE);
      expect(image?.tags[TAG_ATTESTATION]).toBeUndefined();
    });
  });
});
