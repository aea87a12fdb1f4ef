import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { TAG_BASE_IMAGE } from '../constants.ts';
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
}

/** The fields of the subject, in the order they are reported. */
export const SUBJECT_FIELDS = [
  'imageId',
  'region',
  'snapshotIds',
  'architecture',
  'baseImageId',
] as const satisfies readonly (keyof ImageSubjectInput)[];

/**
 * Describes a live image the way its attestation does: the snapshot ids of
 * its EBS mappings and the base image it was built from (its tag).
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

  return {
    imageId: image.imageId,
    region,
    snapshotIds: [...snapshotIds].sort(),
    architecture: image.architecture,
    baseImageId,
  };
}

/**
 * The RFC 8785 form of a subject. Snapshot ids are sorted first: EC2 does
 * not promise an order for block device mappings, and the set is what
 * identifies the image.
 */
export function canonicalSubject(subject: ImageSubjectInput): string {
  const description = {
    imageId: subject.imageId,
    region: subject.region,
    snapshotIds: [...subject.snapshotIds].sort(),
    architecture: subject.architecture,
    baseImageId: subject.baseImageId,
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
  for (const field of SUBJECT_FIELDS) {
    const before = show(expected[field]);
    const after = show(actual[field]);
    if (before !== after) {
      differences.push(`${field}: ${before} -> ${after}`);
    }
  }
  return differences;
}

function show(value: string | readonly string[]): string {
  return typeof value === 'string'
    ? value
    : `[${[...value].sort().join(', ')}]`;
}
