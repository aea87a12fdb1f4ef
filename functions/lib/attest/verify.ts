import { z } from 'zod';
import { TAG_ATTESTATION, TAG_SUBJECT_DIGEST } from '../constants.ts';
import type { ImageRecord, ImageStore } from '../ports.ts';
import { type Envelope, verifyEnvelope } from './dsse.ts';
import {
  AttestationFormatError,
  AttestationNotFoundError,
  ImageSubjectError,
} from './errors.ts';
import {
  SLSA_PROVENANCE_V1,
  STATEMENT_TYPE,
  type Statement,
} from './statement.ts';
import type { AttestationStore } from './store.ts';
import {
  describeImage,
  type ImageSubjectInput,
  SUBJECT_FIELDS,
  subjectDifferences,
  subjectDigest,
} from './subject.ts';

/** An image's contents as hashed now, and the files that were read. */
export interface ImageContents {
  /** Hex SHA-256 of the files, read one after the other. */
  sha256: string;
  files: string[];
}

/**
 * Reads an image's contents and hashes them: a local image's snapshot
 * files. There is none for EBS-backed images.
 */
export type ContentReader = (image: ImageRecord) => Promise<ImageContents>;

export interface VerifyArgs {
  imageId: string;
  images: ImageStore;
  attestations: AttestationStore;
  publicKeyPem: string;
  /** The region the image lives in: part of its subject. */
  region: string;
  /**
   * Hashes the image's contents again, to compare with the content digest
   * that was signed. Without it only the tags and the signature are
   * checked, and `contents.hashed` stays empty.
   */
  contents?: ContentReader;
}

/** What verification found out about the image's contents. */
export interface ContentCheck {
  /** The content digest the signed subject holds; absent if none. */
  signed?: string;
  /** The contents hashed again now, when a reader was given. */
  hashed?: ImageContents;
}

export interface VerifyResult {
  /** True when every check held; `reasons` is then empty. */
  ok: boolean;
  imageId: string;
  region: string;
  /** Why verification failed, one sentence per failed check. */
  reasons: string[];
  /** The subject digest recomputed from the live image. */
  subjectDigest?: string;
  /** The subject digest the image's tag holds. */
  taggedDigest?: string;
  /** Where the attestation was read from (the image's tag). */
  location?: string;
  /** The `keyid` of the signature that verified. */
  keyId?: string;
  /** The signed statement, only once its signature verified. */
  statement?: Statement;
  /** The image's contents, once the signed subject is the live image. */
  contents?: ContentCheck;
}

/**
 * Verifies an image against its attestation: the signature with the given
 * public key, then the subject recomputed from the live image against the
 * tag and against what was signed, then (with `contents`) the image's
 * contents hashed again against the signed content digest. A bad or
 * missing attestation is a reason in the result; only a failure to reach
 * the stores throws.
 */
export async function verifyImage(args: VerifyArgs): Promise<VerifyResult> {
  const { imageId, region } = args;
  const reasons: string[] = [];
  const result = (extra: Partial<VerifyResult>): VerifyResult => ({
    ok: reasons.length === 0,
    imageId,
    region,
    reasons,
    ...extra,
  });

  const image = await args.images.describeImage(imageId);
  if (image === undefined) {
    reasons.push(`image ${imageId} does not exist in ${region}`);
    return result({});
  }

  let live: ImageSubjectInput | undefined;
  try {
    live = describeImage(image, region);
  } catch (error) {
    if (!(error instanceof ImageSubjectError)) {
      throw error;
    }
    reasons.push(`${error.message}: the subject cannot be recomputed`);
  }
  const liveDigest = live === undefined ? undefined : subjectDigest(live);

  const taggedDigest = image.tags[TAG_SUBJECT_DIGEST];
  if (taggedDigest === undefined) {
    reasons.push(`image ${imageId} has no ${TAG_SUBJECT_DIGEST} tag`);
  } else if (liveDigest !== undefined && taggedDigest !== liveDigest) {
    reasons.push(
      `the ${TAG_SUBJECT_DIGEST} tag (${taggedDigest}) is not the digest ` +
        `of the live image (${liveDigest})`,
    );
  }

  const location = image.tags[TAG_ATTESTATION];
  if (location === undefined) {
    reasons.push(
      `image ${imageId} has no ${TAG_ATTESTATION} tag: ` +
        'its attestation cannot be found',
    );
    return result({ subjectDigest: liveDigest, taggedDigest });
  }

  const known = { subjectDigest: liveDigest, taggedDigest, location };
  const envelope = await fetchEnvelope(args.attestations, location, reasons);
  if (envelope === undefined) {
    return result(known);
  }

  const check = verifyEnvelope(envelope, args.publicKeyPem);
  if (!check.ok) {
    reasons.push(`${check.reason} (attestation ${location})`);
    return result(known);
  }

  // Past this point the payload is signed by the key: its content can be
  // trusted to be what the signer wrote, so reading it as ours is safe.
  const statement = readStatement(check.payload, reasons);
  if (statement === undefined || live === undefined) {
    return result({ ...known, keyId: check.keyId, statement });
  }
  if (!checkSubject(statement, live, reasons)) {
    return result({ ...known, keyId: check.keyId, statement });
  }
  // The signed digest covers the live description, content digest included.
  const contents = await checkContents(image, live, args.contents, reasons);
  return result({ ...known, keyId: check.keyId, statement, contents });
}

async function checkContents(
  image: ImageRecord,
  live: ImageSubjectInput,
  reader: ContentReader | undefined,
  reasons: string[],
): Promise<ContentCheck> {
  const signed = live.contentDigest;
  if (signed === undefined || reader === undefined) {
    return signed === undefined ? {} : { signed };
  }
  let hashed: ImageContents;
  try {
    hashed = await reader(image);
  } catch (error) {
    reasons.push(
      `the contents of image ${image.imageId} cannot be hashed again: ` +
        (error as Error).message,
    );
    return { signed };
  }
  if (hashed.sha256 !== signed) {
    reasons.push(
      `the contents of image ${image.imageId} (${hashed.files.join(', ')}) ` +
        `hash to sha256 ${hashed.sha256}, not the signed sha256 ${signed}: ` +
        'they changed after signing',
    );
  }
  return { signed, hashed };
}

async function fetchEnvelope(
  store: AttestationStore,
  location: string,
  reasons: string[],
): Promise<Envelope | undefined> {
  try {
    return await store.get(location);
  } catch (error) {
    if (
      error instanceof AttestationNotFoundError ||
      error instanceof AttestationFormatError
    ) {
      reasons.push(error.message);
      return undefined;
    }
    throw error;
  }
}

const statementSchema = z.object({
  _type: z.literal(STATEMENT_TYPE),
  subject: z
    .array(
      z.object({
        name: z.string().optional(),
        digest: z.record(z.string(), z.string()),
        annotations: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .min(1),
  predicateType: z.literal(SLSA_PROVENANCE_V1),
  predicate: z.record(z.string(), z.unknown()),
});

function readStatement(
  payload: Buffer,
  reasons: string[],
): Statement | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    reasons.push('the signed payload is not JSON');
    return undefined;
  }
  const parsed = statementSchema.safeParse(value);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join('.'));
    reasons.push(
      'the signed payload is not an in-toto v1 statement with SLSA ' +
        `provenance v1 (${fields.join(', ')})`,
    );
    return undefined;
  }
  return value as Statement;
}

/** True when the statement names the live image; a reason otherwise. */
function checkSubject(
  statement: Statement,
  live: ImageSubjectInput,
  reasons: string[],
): boolean {
  const liveDigest = subjectDigest(live);
  if (statement.subject.some((s) => s.digest?.sha256 === liveDigest)) {
    return true;
  }

  const signed = statement.subject
    .map((s) => signedSubject(s.annotations))
    .find((s) => s?.imageId === live.imageId);
  const differences =
    signed === undefined ? [] : subjectDifferences(signed, live);
  const detail =
    differences.length > 0
      ? `signed -> live: ${differences.join('; ')}`
      : `signed ${statement.subject.map((s) => s.digest?.sha256).join(', ')}` +
        `, live ${liveDigest}`;
  // An image signed before its content digest was part of the subject.
  const unsignedContents =
    signed !== undefined &&
    signed.contentDigest === undefined &&
    differences.length === 1 &&
    differences[0]?.startsWith('contentDigest:');
  reasons.push(
    `the attestation's subject is not the live image (${detail})` +
      (unsignedContents
        ? ": it was signed without the image's content digest, so its " +
          'signature does not cover the contents'
        : ''),
  );
  return false;
}

function signedSubject(
  annotations: Record<string, unknown> | undefined,
): ImageSubjectInput | undefined {
  if (annotations === undefined) {
    return undefined;
  }
  const complete = SUBJECT_FIELDS.every((field) => field in annotations);
  return complete ? (annotations as unknown as ImageSubjectInput) : undefined;
}
