import { TAG_ATTESTATION, TAG_SUBJECT_DIGEST } from '../constants.ts';
import { ImageNotFoundError, SigningError } from '../errors.ts';
import type { ImageStore } from '../ports.ts';
import { signStatement, verifyEnvelope } from './dsse.ts';
import { SubjectMismatchError } from './errors.ts';
import type { Signer } from './signers.ts';
import { buildStatement, type ProvenanceInput } from './statement.ts';
import type { AttestationStore } from './store.ts';
import { describeImage, subjectDifferences, subjectDigest } from './subject.ts';
import type { ContentReader } from './verify.ts';

/** EC2 refuses tag values longer than this. */
export const TAG_VALUE_LIMIT = 256;

export interface AttestImageArgs {
  input: ProvenanceInput;
  signer: Signer;
  store: AttestationStore;
  images: ImageStore;
  /**
   * Hashes the image's contents again before they are signed, so the
   * signed content digest is what the files hold now, not only what the
   * build's tag says. Used when the subject has a content digest.
   */
  contents?: ContentReader;
}

export interface AttestImageResult {
  /** The subject digest, also tagged on the image. */
  digest: string;
  /** Where the envelope is stored, also tagged on the image. */
  location: string;
}

/**
 * The Sign task: checks that the subject is the live image, signs the
 * provenance statement, stores the envelope, then tags the image with the
 * subject digest and the envelope's location. Signing again replaces both.
 */
export async function attestImage(
  args: AttestImageArgs,
): Promise<AttestImageResult> {
  const { input, signer, store, images } = args;
  const statement = buildStatement(input);
  const { imageId, region } = input.subject;

  const image = await images.describeImage(imageId);
  if (image === undefined) {
    throw new ImageNotFoundError(`image ${imageId} does not exist`, {
      data: { imageId },
    });
  }
  const live = describeImage(image, region);
  const digest = subjectDigest(input.subject);
  if (subjectDigest(live) !== digest) {
    throw new SubjectMismatchError(
      `the subject to sign is not image ${imageId} as it is now ` +
        `(given -> live: ${subjectDifferences(input.subject, live).join('; ')})`,
      { data: { imageId } },
    );
  }

  const signedContents = input.subject.contentDigest;
  if (signedContents !== undefined && args.contents !== undefined) {
    const hashed = await args.contents(image);
    if (hashed.sha256 !== signedContents) {
      throw new SubjectMismatchError(
        `the contents of image ${imageId} (${hashed.files.join(', ')}) ` +
          `hash to sha256 ${hashed.sha256}, not ${signedContents} as ` +
          'recorded by its build: they changed after the build',
        { data: { imageId, files: hashed.files } },
      );
    }
  }

  const envelope = await signStatement(statement, signer);
  // An envelope no verifier accepts must not reach the image: a key of the
  // wrong kind or a malformed signature fails here, before publishing.
  const check = verifyEnvelope(envelope, await signer.publicKeyPem());
  if (!check.ok) {
    throw new SigningError(
      `the new attestation does not verify with key ${signer.keyId}: ` +
        check.reason,
      { data: { imageId, keyId: signer.keyId } },
    );
  }

  const location = await store.put(imageId, envelope);
  if (location.length > TAG_VALUE_LIMIT) {
    throw new SigningError(
      `the attestation location is ${location.length} characters; a tag ` +
        `value holds ${TAG_VALUE_LIMIT}: shorten the store's prefix`,
      { data: { imageId, location } },
    );
  }
  await images.tagImage(imageId, {
    [TAG_SUBJECT_DIGEST]: digest,
    [TAG_ATTESTATION]: location,
  });
  return { digest, location };
}
