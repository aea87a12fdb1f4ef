/**
 * Names shared by the pipeline, the Packer template and the retention
 * policy. Tag keys are a contract with images already built: change them
 * only with a migration.
 */

/** Marks every resource this pipeline creates. */
export const TAG_MANAGED_BY = 'ManagedBy';
export const MANAGED_BY_VALUE = 'sbc-ami-pipeline';

/** The run that created an image, instance, key pair, group or snapshot. */
export const TAG_RUN_ID = 'sbc-ami:run-id';
/** The SIP profile name an image was built from. */
export const TAG_PROFILE = 'sbc-ami:profile';
/** SHA-256 of the SIP profile bytes. */
export const TAG_PROFILE_DIGEST = 'sbc-ami:profile-digest';
/** SHA-256 of the Packer template and provisioning files. */
export const TAG_TEMPLATE_DIGEST = 'sbc-ami:template-digest';
/** Source revision (commit) of this pipeline that built the image. */
export const TAG_SOURCE_REVISION = 'sbc-ami:source-revision';
/**
 * `true` when the checkout that built the image had changes not in its
 * source revision, `false` when it had none; absent when the build could
 * not tell (CodeBuild builds a commit as it is).
 */
export const TAG_SOURCE_DIRTY = 'sbc-ami:source-dirty';
/** The base image the build started from. */
export const TAG_BASE_IMAGE = 'sbc-ami:base-image-id';
/** Set to `true` once the image passed the smoke test and was published. */
export const TAG_VALIDATED = 'sbc-ami:validated';
/** Set to `true` by an operator: retention never deletes the image. */
export const TAG_RETAIN = 'sbc-ami:retain';
/** SHA-256 of the canonical image description in the attestation. */
export const TAG_SUBJECT_DIGEST = 'sbc-ami:subject-digest';
/** Where the signed provenance attestation is stored. */
export const TAG_ATTESTATION = 'sbc-ami:attestation';
/**
 * `sha256:HEX` of the image's contents, when they are a file that can be
 * hashed (a local image's packed root filesystem); EBS-backed images have
 * none. Part of the signed subject when present.
 */
export const TAG_IMAGE_DIGEST = 'sbc-ami:image-digest';

/** Debian's publishing account for official Debian AMIs. */
export const DEBIAN_OWNER_ID = '136693071363';
export const DEBIAN_12_NAME_PATTERN = 'debian-12-amd64-*';
