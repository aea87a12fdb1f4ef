import { UsageError } from '../exit.ts';
import { explainAwsError } from './aws.ts';

/**
 * What a command reads from its surroundings. Every field defaults to the
 * process's own; tests pass their own to capture output or fix the clock.
 */
export interface CliContext {
  readonly env?: NodeJS.ProcessEnv;
  /** A line for standard output. */
  readonly out?: (text: string) => void;
  /** A line for standard error: progress notes and complaints. */
  readonly err?: (text: string) => void;
  readonly now?: () => Date;
}

export interface ResolvedContext {
  readonly env: NodeJS.ProcessEnv;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly now: () => Date;
}

export function resolveContext(context: CliContext = {}): ResolvedContext {
  return {
    env: context.env ?? process.env,
    out: context.out ?? ((text) => console.log(text)),
    err: context.err ?? ((text) => console.error(text)),
    now: context.now ?? (() => new Date()),
  };
}

/** A whole number flag within bounds, or a usage error naming the flag. */
export function integerOption(
  flag: string,
  value: string | undefined,
  bounds: {
    readonly min: number;
    readonly max: number;
    readonly default: number;
  },
): number {
  if (value === undefined) {
    return bounds.default;
  }
  const text = value.trim();
  const number = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(number >= bounds.min && number <= bounds.max)) {
    throw new UsageError(
      `${flag} must be a whole number from ${bounds.min} to ${bounds.max}, ` +
        `got "${value}"`,
    );
  }
  return number;
}

/**
 * Runs a command's AWS work and explains what fails: no region, no or
 * rejected credentials, a target that does not exist are usage errors
 * (exit 2); an unreachable endpoint or a refused call is a failure (exit 1)
 * naming the call. `what` names what the command works on, with where it
 * came from (`SBC_AMI_STATE_MACHINE_ARN=arn:...`).
 */
export async function withAwsConfiguration<T>(
  what: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw explainAwsError(error, what) ?? error;
  }
}
