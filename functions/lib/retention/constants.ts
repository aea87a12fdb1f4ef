/**
 * Tag keys of retention. The shared keys (ManagedBy, run id, profile,
 * validated, retain) live in `functions/lib/constants.ts`.
 */

/**
 * Snapshot ids recorded on an image, separated by spaces or commas. Block
 * device mappings already name them; this tag keeps the record for images
 * whose mappings EC2 no longer reports (a failed registration).
 */
export const TAG_SNAPSHOT_IDS = 'sbc-ami:snapshot-ids';

/** Image states in which EC2 is still creating the image. */
export const CREATING_STATES: ReadonlySet<string> = new Set([
  'pending',
  'transient',
]);

/** Image states that mean the build produced no usable image. */
export const FAILED_STATES: ReadonlySet<string> = new Set([
  'failed',
  'error',
  'invalid',
]);
