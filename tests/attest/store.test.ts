import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AttestationFormatError,
  AttestationNotFoundError,
  type Envelope,
  IN_TOTO_PAYLOAD_TYPE,
  LocalAttestationStore,
  parseS3Location,
  S3AttestationStore,
} from '../../functions/lib/attest/index.ts';
import {
  ConfigurationError,
  InvalidInputError,
} from '../../functions/lib/errors.ts';
import { localPaths } from '../../functions/lib/local/paths.ts';
import { BUCKET, IMAGE_ID, s3Holds, tempDir } from './fixtures.ts';

const ENVELOPE: Envelope = {
  payloadType: IN_TOTO_PAYLOAD_TYPE,
  payload: Buffer.from('{"_type":"x"}').toString('base64'),
  signatures: [{ keyid: 'key-1', sig: 'MEUCIQ==' }],
};

const s3 = mockClient(S3Client);

describe('S3AttestationStore', () => {
  beforeEach(() => {
    s3.reset();
  });

  describe('put', () => {
    it('writes the envelope under the prefix and returns its versioned location', async () => {
      // Prepare
      s3Holds(s3);
      const store = new S3AttestationStore(new S3Client({}), {
        bucket: BUCKET,
        prefix: 'runs/run-42/',
      });

      // Act
      const location = await store.put(IMAGE_ID, ENVELOPE);

      // Assess
      expect(location).toBe(
        `s3://${BUCKET}/runs/run-42/${IMAGE_ID}.intoto.json?versionId=v1`,
      );
      const input = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
      expect(input).toMatchObject({
        Bucket: BUCKET,
        Key: `runs/run-42/${IMAGE_ID}.intoto.json`,
        ContentType: 'application/json',
      });
      expect(JSON.parse(String(input?.Body))).toEqual(ENVELOPE);
    });

    it('returns a location without version for an unversioned bucket', async () => {
      // Prepare
      s3.on(PutObjectCommand).resolves({});
      const store = new S3AttestationStore(new S3Client({}), {
        bucket: BUCKET,
      });

      // Act
      const location = await store.put(IMAGE_ID, ENVELOPE);

      // Assess
      expect(location).toBe(`s3://${BUCKET}/${IMAGE_ID}.intoto.json`);
    });

    it('refuses to write without a bucket', async () => {
      // Prepare
      const store = new S3AttestationStore(new S3Client({}));

      // Act
      const act = store.put(IMAGE_ID, ENVELOPE);

      // Assess
      await expect(act).rejects.toThrow(ConfigurationError);
      expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    });

    it('refuses an image id that would escape the prefix', async () => {
      // Prepare
      const store = new S3AttestationStore(new S3Client({}), {
        bucket: BUCKET,
      });

      // Act
      const act = store.put('../ami-1', ENVELOPE);

      // Assess
      await expect(act).rejects.toThrow(InvalidInputError);
      await expect(act).rejects.toThrow(/imageId/);
    });
  });

  describe('get', () => {
    it('reads back the exact version the location names', async () => {
      // Prepare
      s3Holds(s3);
      const store = new S3AttestationStore(new S3Client({}), {
        bucket: BUCKET,
      });
      const location = await store.put(IMAGE_ID, ENVELOPE);
      await store.put(IMAGE_ID, { ...ENVELOPE, payload: 'e30=' });

      // Act
      const envelope = await new S3AttestationStore(new S3Client({})).get(
        location,
      );

      // Assess
      expect(envelope).toEqual(ENVELOPE);
      expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual({
        Bucket: BUCKET,
        Key: `${IMAGE_ID}.intoto.json`,
        VersionId: 'v1',
      });
    });

    it('fails with AttestationNotFoundError when the object is gone', async () => {
      // Prepare
      s3Holds(s3);
      const store = new S3AttestationStore(new S3Client({}));

      // Act
      const act = store.get(`s3://${BUCKET}/missing.intoto.json?versionId=v9`);

      // Assess
      await expect(act).rejects.toThrow(AttestationNotFoundError);
    });

    it('fails with AttestationFormatError for a location that is not s3://', async () => {
      // Prepare
      const store = new S3AttestationStore(new S3Client({}));

      // Act
      const act = store.get('https://example.com/a.json');

      // Assess
      await expect(act).rejects.toThrow(AttestationFormatError);
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    });
  });
});

describe('parseS3Location', () => {
  it('decodes the key and the version', () => {
    // Prepare
    const location = 's3://b/runs/a%20b/ami-1.intoto.json?versionId=x%2By';

    // Act
    const parsed = parseS3Location(location);

    // Assess
    expect(parsed).toEqual({
      bucket: 'b',
      key: 'runs/a b/ami-1.intoto.json',
      versionId: 'x+y',
    });
  });
});

describe('LocalAttestationStore', () => {
  let home: { path: string; remove: () => Promise<void> };

  beforeEach(async () => {
    home = await tempDir('sbc-ami-home-');
  });

  afterEach(async () => {
    await home.remove();
  });

  it('writes one file per image and reads it back from its file URL', async () => {
    // Prepare
    const paths = localPaths(home.path);
    const store = new LocalAttestationStore(paths);

    // Act
    const location = await store.put(IMAGE_ID, ENVELOPE);
    const envelope = await store.get(location);

    // Assess
    expect(location).toBe(
      pathToFileURL(join(paths.attestations, `${IMAGE_ID}.intoto.json`)).href,
    );
    expect(envelope).toEqual(ENVELOPE);
  });

  it('fails with AttestationNotFoundError when the file is gone', async () => {
    // Prepare
    const store = new LocalAttestationStore(localPaths(home.path));
    const location = pathToFileURL(join(home.path, 'nothing.json')).href;

    // Act
    const act = store.get(location);

    // Assess
    await expect(act).rejects.toThrow(AttestationNotFoundError);
  });

  it('fails with AttestationFormatError naming the file that is not JSON', async () => {
    // Prepare
    const store = new LocalAttestationStore(localPaths(home.path));
    const file = join(home.path, 'broken.intoto.json');
    await writeFile(file, '{"payload":');

    // Act
    const act = store.get(pathToFileURL(file).href);

    // Assess
    await expect(act).rejects.toThrow(AttestationFormatError);
    await expect(act).rejects.toThrow(`${file} is not JSON`);
  });
});
