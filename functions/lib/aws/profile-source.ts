import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError, throttleAware } from '../errors.ts';
import type { ProfileRef, ProfileSource } from '../ports.ts';

/** Profiles are missing when S3 answers with one of these. */
const MISSING = new Set([
  'NoSuchKey',
  'NoSuchVersion',
  'NoSuchBucket',
  'NotFound',
]);

/** SIP profiles as versions of objects in the config bucket. */
export class S3ProfileSource implements ProfileSource {
  readonly s3: S3Client;

  constructor(s3: S3Client) {
    this.s3 = s3;
  }

  async read(
    ref: ProfileRef,
  ): Promise<{ body: Uint8Array; versionId?: string }> {
    if (ref.bucket === undefined) {
      throw new InvalidInputError(
        `profile.bucket is required (key ${ref.key})`,
      );
    }
    const location = `s3://${ref.bucket}/${ref.key}`;
    try {
      const output = await throttleAware('GetObject', () =>
        this.s3.send(
          new GetObjectCommand({
            Bucket: ref.bucket,
            Key: ref.key,
            VersionId: ref.versionId,
          }),
        ),
      );
      const body = await output.Body?.transformToByteArray();
      if (body === undefined) {
        throw new InvalidInputError(`profile ${location} is empty`);
      }
      return { body, versionId: output.VersionId };
    } catch (error) {
      if (error instanceof Error && MISSING.has(error.name)) {
        throw new InvalidInputError(
          `profile ${location}${ref.versionId === undefined ? '' : ` version ${ref.versionId}`} does not exist`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/** The profile source of the deployed stack. */
export function profileSourceFromEnv(): S3ProfileSource {
  return new S3ProfileSource(new S3Client({}));
}
