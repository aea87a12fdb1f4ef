import { InvalidInputError } from '../errors.ts';

/**
 * A probe option is missing or malformed. `field` names the option
 * (`udpPort`, `caFile`, `closed`...) so a caller such as the CLI can map it
 * back to the flag the person typed.
 */
export class ProbeOptionsError extends InvalidInputError {
  override name = 'ProbeOptionsError';
  readonly field: string;
  /** What is wrong, without the field name. */
  readonly problem: string;

  constructor(field: string, problem: string, cause?: unknown) {
    super(`${field}: ${problem}`, { cause, data: { field } });
    this.field = field;
    this.problem = problem;
  }
}
