import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { TAG_BASE_IMAGE, TAG_IMAGE_DIGEST } from '../constants.ts';
import type { ImageRecord } from '../ports.ts';
import { ImageSubjectError } from './errors.ts';

/** The region name local-mode images are described with. */
export const LOCAL_REGION = 'local';

/**
 * What the subject digest covers: everything a verifier can read back from
 * the live image, and nothing it cannot (no name, no creation date).
 */
export interface ImageSubjectInput {
  imageId: string;
  region: string;
  snapshotIds: string[];
  architecture: string;
  baseImageId: string;
  /**
   * Hex SHA-256 of the image's contents, when they can be hashed: a local
   * image's snapshot files (see `ContentReader`). EBS snapshots cannot be
   * read back as bytes, so AWS images have none and their subject is the
   * same as before the field existed.
   */
  contentDigest?: string;
}

/** The fields every subject has, in the order they are reported. */
export const SUBJECT_FIELDS = [
  'imageId',
  'region',
  'snapshotIds',
  'architecture',
  'baseImageId',
] as const satisfies readonly (keyof ImageSubjectInput)[];

/** Fields a subject has only when the image has them. */
export const OPTIONAL_SUBJECT_FIELDS = [
  'contentDigest',
] as const satisfies readonly (keyof ImageSubjectInput)[];

/**
 * Describes a live image the way its attestation does: the snapshot ids of
 * its EBS mappings, the base image it was built from (its tag) and, when
 * the build recorded one, the digest of its contents (its tag; a verifier
 * that can read the contents hashes them again, see verifyImage).
 */
export function describeImage(
  image: ImageRecord,
  region: string,
): ImageSubjectInput {
  const baseImageId = image.tags[TAG_BASE_IMAGE];
  if (baseImageId === undefined || baseImageId === '') {
    throw new ImageSubjectError(
      `image ${image.imageId} has no ${TAG_BASE_IMAGE} tag`,
      { data: { imageId: image.imageId, tag: TAG_BASE_IMAGE } },
    );
  }

  const snapshotIds = image.blockDevices
    .map((device) => device.snapshotId)
    .filter((id): id is string => id !== undefined && id !== '');
  if (snapshotIds.length === 0) {
    throw new ImageSubjectError(
      `image ${image.imageId} has no EBS snapshot in its block devices`,
      { data: { imageId: image.imageId } },
    );
  }

  const contentTag = image.tags[TAG_IMAGE_DIGEST];
  let contentDigest: string | undefined;
  if (contentTag !== undefined) {
    const match = /^sha256:([0-9a-f]{64})$/.exec(contentTag);
    if (match?.[1] === undefined) {
      throw new ImageSubjectError(
        `image ${image.imageId} has a ${TAG_IMAGE_DIGEST} tag that is not ` +
          `sha256:HEX (${JSON.stringify(contentTag)})`,
        { data: { imageId: image.imageId, tag: TAG_IMAGE_DIGEST } },
      );
    }
    contentDigest = match[1];
  }

  return {
    imageId: image.imageId,
    region,
    snapshotIds: [...snapshotIds].sort(),
    architecture: image.architecture,
    baseImageId,
    ...(contentDigest === undefined ? {} : { contentDigest }),
  };
}

/**
 * The RFC 8785 form of a subject. Snapshot ids are sorted first: EC2 does
 * not promise an order for block device mappings, and the set is what
 * identifies the image. `contentDigest` appears only when the image has
 * one, so a subject without it hashes as it always did.
 */
export function canonicalSubject(subject: ImageSubjectInput): string {
  const description = {
    imageId: subject.imageId,
    region: subject.region,
    snapshotIds: [...subject.snapshotIds].sort(),
    architecture: subject.architecture,
    baseImageId: subject.baseImageId,
    ...(subject.contentDigest === undefined
      ? {}
      : { contentDigest: subject.contentDigest }),
  };
  const text = canonicalize(description);
  if (text === undefined) {
    throw new ImageSubjectError('the image description cannot be serialized');
  }
  return text;
}

/** Hex SHA-256 of the canonical subject. */
export function subjectDigest(subject: ImageSubjectInput): string {
  return createHash('sha256').update(canonicalSubject(subject)).digest('hex');
}

/** The in-toto subject name: region and image id. */
export function subjectName(subject: ImageSubjectInput): string {
  return `${subject.region}/${subject.imageId}`;
}

/**
 * The fields where two subjects differ, each as `field: a -> b`, for an
 * error or a verification reason a person can act on.
 */
export function subjectDifferences(
  expected: ImageSubjectInput,
  actual: ImageSubjectInput,
): string[] {
  const differences: string[] = [];
  for (const field of [...SUBJECT_FIELDS, ...OPTIONAL_SUBJECT_FIELDS]) {
    const before = show(expected[field]);
    const after = show(actual[field]);
    if (before !== after) {
      differences.push(`${field}: ${before} -> ${after}`);
    }
  }
  return differences;
}

function show(value: string | readonly string[] | undefined): string {
  if (value === undefined) {
    return '(none)';
  }
  return typeof value === 'string'
    ? value
    : `[${[...value].sort().join(', ')}]`;
}
