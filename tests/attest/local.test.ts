import { readFile, stat, writeFile } from 'node:fs/promises';
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
  subjectDigest,
  verifyImage,
} from '../../functions/lib/attest/index.ts';
import {
  TAG_ATTESTATION,
  TAG_SUBJECT_DIGEST,
} from '../../functions/lib/constants.ts';
import {
  LOCAL_OWNER_ID,
  LocalImageStore,
} from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import { imageRecord, p256, provenanceInput, tempDir } from './fixtures.ts';

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
});
