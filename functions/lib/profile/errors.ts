import { PipelineError } from '../errors.ts';

/** One bad field of a profile: its path (`genesys.signalingPeers[1]`). */
export interface ProfileProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * The SIP profile is invalid. The message has one line per problem, each
 * naming the file and the field, so a person can fix them all in one pass.
 */
export class ProfileError extends PipelineError {
  override name = 'ProfileError';
  readonly source: string;
  readonly problems: readonly ProfileProblem[];

  constructor(
    source: string,
    problems: readonly ProfileProblem[],
    cause?: unknown,
  ) {
    super(
      problems.map((p) => `${source}: ${p.path}: ${p.message}`).join('\n'),
      { cause, data: { source, fields: problems.map((p) => p.path) } },
    );
    this.source = source;
    this.problems = problems;
  }
}

/** The profile file cannot be read at all (missing, a folder, no access). */
export class ProfileReadError extends PipelineError {
  override name = 'ProfileReadError';
  readonly path: string;

  constructor(path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    super(`cannot read ${path}${code === undefined ? '' : ` (${code})`}`, {
      cause,
      data: { path },
    });
    this.path = path;
  }
}
