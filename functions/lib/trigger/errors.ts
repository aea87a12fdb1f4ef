import { PipelineError } from '../errors.ts';

/**
 * A profile the schedule must rebuild is not in the config bucket. The
 * other profiles were started; the message names the missing keys.
 */
export class ScheduledProfileMissingError extends PipelineError {
  override name = 'ScheduledProfileMissingError';
}
