import { ConfigurationError, PipelineError } from '../errors.ts';

/**
 * A listing returned a page token it had already returned: following it
 * would loop forever, so the listing stops and nothing is deleted.
 */
export class PaginationLoopError extends PipelineError {
  override name = 'PaginationLoopError';
}

/** A retention policy value is out of range; the message names the field. */
export class RetentionPolicyError extends ConfigurationError {
  override name = 'RetentionPolicyError';
}
