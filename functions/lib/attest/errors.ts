import { PipelineError } from '../errors.ts';

/**
 * Errors of the attestation module. Verification never throws these for a
 * bad attestation: `verifyImage` turns them into reasons. Signing throws
 * them, and the state machine's catch-all routes them to the failure path.
 */

/** The image cannot be described: a tag or its EBS snapshots are missing. */
export class ImageSubjectError extends PipelineError {
  override name = 'ImageSubjectError';
}

/** The subject given for signing is not what the live image is. */
export class SubjectMismatchError extends PipelineError {
  override name = 'SubjectMismatchError';
}

/** No attestation is stored at a location. */
export class AttestationNotFoundError extends PipelineError {
  override name = 'AttestationNotFoundError';
}

/** A stored attestation is not a DSSE envelope, or its location is malformed. */
export class AttestationFormatError extends PipelineError {
  override name = 'AttestationFormatError';
}

/** A signing key is unreadable, of the wrong type, or open to other users. */
export class SigningKeyError extends PipelineError {
  override name = 'SigningKeyError';
}
