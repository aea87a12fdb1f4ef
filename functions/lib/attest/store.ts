import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  ConfigurationError,
  InvalidInputError,
  throttleAware,
} from '../errors.ts';
import { writeJsonFile } from '../local/json-file.ts';
import type { LocalPaths } from '../local/paths.ts';
import { type Envelope, parseEnvelope } from './dsse.ts';
import { AttestationFormatError, AttestationNotFoundError } from './errors.ts';

/**
 * Where signed attestations live. `put` returns a location that fits in a
 * tag value and that `get` of the same kind of store reads back.
 */
export interface AttestationStore {
  put(imageId: string, envelope: Envelope): Promise<string>;
  get(location: string): Promise<Envelope>;
}

/** File name of an image's attestation (the in-toto bundle convention). */
export function attestationFileName(imageId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(imageId)) {
    throw new InvalidInputError(
      `imageId: ${JSON.stringify(imageId)} cannot name an attestation file`,
      { data: { imageId } },
    );
  }
  return `${imageId}.intoto.json`;
}

/** One JSON file per image under the local home; locations are file URLs. */
export class LocalAttestationStore implements AttestationStore {
  readonly #paths: LocalPaths;

  constructor(paths: LocalPaths) {
    this.#paths = paths;
  }

  async put(imageId: string, envelope: Envelope): Promise<string> {
    const file = join(this.#paths.attestations, attestationFileName(imageId));
    await writeJsonFile(file, envelope);
    return pathToFileURL(file).href;
  }

  async get(location: string): Promise<Envelope> {
    let file: string;
    try {
      file = fileURLToPath(location);
    } catch (error) {
      throw new AttestationFormatError(
        `attestation location ${location} is not a file URL`,
        { cause: error, data: { location } },
      );
    }

    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AttestationNotFoundError(`no attestation at ${file}`, {
          data: { location },
        });
      }
      throw error;
    }
    return parseEnvelope(parseJson(text, file), file);
  }
}

export interface S3Target {
  readonly bucket: string;
  /** Prepended to `IMAGE.intoto.json`: the build's artifact folder. */
  readonly prefix?: string;
}

/**
 * Attestations as S3 objects beside the build's artifacts. A location is
 * `s3://BUCKET/KEY`, with `?versionId=` when the bucket is versioned, so a
 * tag keeps naming the object that was signed even if the key is reused.
 * A store without a target reads any location but cannot write.
 */
export class S3AttestationStore implements AttestationStore {
  readonly #client: S3Client;
  readonly #target: S3Target | undefined;

  constructor(client: S3Client, target?: S3Target) {
    this.#client = client;
    this.#target = target;
  }

  async put(imageId: string, envelope: Envelope): Promise<string> {
    if (this.#target === undefined) {
      throw new ConfigurationError(
        'the attestation store has no bucket to write to',
      );
    }
    const { bucket, prefix = '' } = this.#target;
    const key = `${prefix}${attestationFileName(imageId)}`;

    const response = await throttleAware('S3 PutObject', () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: `${JSON.stringify(envelope, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      ),
    );

    const url = new URL(`s3://${bucket}`);
    url.pathname = `/${key}`;
    if (response.VersionId !== undefined && response.VersionId !== 'null') {
      url.searchParams.set('versionId', response.VersionId);
    }
    return url.href;
  }

  async get(location: string): Promise<Envelope> {
    const { bucket, key, versionId } = parseS3Location(location);

    let text: string | undefined;
    try {
      const response = await this.#client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          VersionId: versionId,
        }),
      );
      text = await response.Body?.transformToString('utf8');
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'NoSuchKey' || name === 'NoSuchVersion') {
        throw new AttestationNotFoundError(`no attestation at ${location}`, {
          cause: error,
          data: { location },
        });
      }
      throw error;
    }
    if (text === undefined) {
      throw new AttestationFormatError(`${location} has no body`, {
        data: { location },
      });
    }
    return parseEnvelope(parseJson(text, location), location);
  }
}

/** Splits an `s3://BUCKET/KEY[?versionId=V]` location. */
export function parseS3Location(location: string): {
  bucket: string;
  key: string;
  versionId?: string;
} {
  let url: URL;
  try {
    url = new URL(location);
  } catch (error) {
    throw new AttestationFormatError(
      `attestation location ${location} is not a URL`,
      { cause: error, data: { location } },
    );
  }
  const key = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.protocol !== 's3:' || url.hostname === '' || key === '') {
    throw new AttestationFormatError(
      `attestation location ${location} is not s3://BUCKET/KEY`,
      { data: { location } },
    );
  }
  const versionId = url.searchParams.get('versionId') ?? undefined;
  return { bucket: url.hostname, key, ...(versionId ? { versionId } : {}) };
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AttestationFormatError(`${source} is not JSON`, {
      cause: error,
      data: { source },
    });
  }
}
