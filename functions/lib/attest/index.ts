/**
 * Signed provenance for images: an in-toto statement with a SLSA
 * provenance predicate, in a DSSE envelope signed by KMS or a local key,
 * stored beside the build's artifacts and tied to the image by its tags.
 */
export {
  type AttestImageArgs,
  type AttestImageResult,
  attestImage,
  TAG_VALUE_LIMIT,
} from './attest-image.ts';
export {
  type Envelope,
  type EnvelopeCheck,
  IN_TOTO_PAYLOAD_TYPE,
  parseEnvelope,
  signStatement,
  verifyEnvelope,
} from './dsse.ts';
export {
  AttestationFormatError,
  AttestationNotFoundError,
  ImageSubjectError,
  SigningKeyError,
  SubjectMismatchError,
} from './errors.ts';
export {
  isDerEcdsaSignature,
  KMS_RAW_MESSAGE_LIMIT,
  KmsSigner,
  LocalKeySigner,
  localKeyFiles,
  publicKeyFileFor,
  type Signer,
} from './signers.ts';
export {
  BUILD_TYPE,
  buildStatement,
  DEFAULT_BUILDER_ID,
  type ProvenanceInput,
  parseProvenanceInput,
  type ResourceDescriptor,
  SLSA_PROVENANCE_V1,
  type SlsaProvenance,
  STATEMENT_TYPE,
  type Statement,
  smokeReportOf,
} from './statement.ts';
export {
  type AttestationStore,
  attestationFileName,
  LocalAttestationStore,
  parseS3Location,
  S3AttestationStore,
  type S3Target,
} from './store.ts';
export {
  canonicalSubject,
  describeImage,
  type ImageSubjectInput,
  LOCAL_REGION,
  subjectDigest,
  subjectName,
} from './subject.ts';
export {
  type ContentCheck,
  type ContentReader,
  type ImageContents,
  type VerifyArgs,
  type VerifyResult,
  verifyImage,
} from './verify.ts';
