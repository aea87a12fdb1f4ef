import { z } from 'zod';
import {
  BuildFailedError,
  BuildInfrastructureError,
  BuildStatusUnknownError,
} from '../errors.ts';
import type { BuildRunner, BuildState } from '../ports.ts';
import { continuePoll, PollSchema, startPoll } from './poll.ts';
import { ProfileRefSchema } from './run-id.ts';
import type { PipelineSettings } from './settings.ts';

export const StartBuildInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  /** Builds started so far for this run (0 on the first start). */
  attempt: z.number().int().min(0),
  profile: ProfileRefSchema.extend({ digest: z.string().length(64) }),
  baseImageId: z.string().min(1),
});

export const CheckBuildInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  buildId: z.string().min(1),
  attempt: z.number().int().min(1),
  poll: PollSchema,
});

export type StartBuildInput = z.infer<typeof StartBuildInputSchema>;
export type CheckBuildInput = z.infer<typeof CheckBuildInputSchema>;

/** `$.build` in the state: the build and where its wait loop stands. */
export interface BuildStep {
  readonly buildId: string;
  readonly attempt: number;
  /** WAITING loops again; DONE goes on to the image. */
  readonly state: 'WAITING' | 'DONE';
  readonly status: string;
  readonly phase: string;
  readonly artifactsLocation: string | null;
  readonly poll: z.infer<typeof PollSchema>;
}

export interface BuildDeps {
  readonly builds: BuildRunner;
  readonly settings: PipelineSettings;
  readonly now: () => Date;
}

/** Phases in which a failure is CodeBuild's, not the build's: start again. */
const INFRASTRUCTURE_PHASES = new Set(['SUBMITTED', 'QUEUED', 'PROVISIONING']);

/**
 * Starts the Packer build. The run id is the idempotency token of the first
 * start, so a retried call (throttling, account build limit) cannot start
 * a second build; a start after an infrastructure fault gets its own token.
 */
export async function startBuild(
  input: StartBuildInput,
  deps: BuildDeps,
): Promise<BuildStep> {
  const attempt = input.attempt + 1;
  if (attempt > deps.settings.build.maxStarts) {
    throw new BuildFailedError(
      `build failed before running ${input.attempt} times; giving up`,
      { data: { attempts: input.attempt } },
    );
  }

  const { buildId } = await deps.builds.start({
    runId: input.runId,
    attempt,
    profile: input.profile,
    profileDigest: input.profile.digest,
    baseImageId: input.baseImageId,
  });

  return {
    buildId,
    attempt,
    state: 'WAITING',
    status: 'IN_PROGRESS',
    phase: 'SUBMITTED',
    artifactsLocation: null,
    poll: startPoll(deps.now(), deps.settings.build.firstWaitSeconds),
  };
}

/**
 * Looks at the build once and maps its status: IN_PROGRESS waits on,
 * SUCCEEDED goes on, a failure while still queued is an infrastructure
 * fault (started again), every other end is final, and a status this
 * pipeline does not know fails closed.
 */
export async function checkBuild(
  input: CheckBuildInput,
  deps: BuildDeps,
): Promise<BuildStep> {
  const build = await deps.builds.get(input.buildId);
  const step = {
    buildId: input.buildId,
    attempt: input.attempt,
    status: build.status,
    phase: build.phase,
    artifactsLocation: build.artifactsLocation ?? null,
  };

  switch (build.status) {
    case 'IN_PROGRESS':
      return {
        ...step,
        state: 'WAITING',
        poll: continuePoll(input.poll, {
          now: deps.now(),
          what: `build ${input.buildId}`,
          observed: `${build.status}/${build.phase}`,
          waitSeconds: deps.settings.build.waitSeconds,
          deadlineMinutes: deps.settings.build.deadlineMinutes,
        }),
      };
    case 'SUCCEEDED':
      return { ...step, state: 'DONE', poll: input.poll };
    case 'FAILED':
    case 'FAULT':
      if (INFRASTRUCTURE_PHASES.has(build.phase)) {
        throw new BuildInfrastructureError(
          `build ${input.buildId} ended ${build.status} while ${build.phase}`,
          { data: describe(build) },
        );
      }
      throw new BuildFailedError(
        `build ${input.buildId} ended ${build.status} in phase ${build.phase}`,
        { data: describe(build) },
      );
    case 'TIMED_OUT':
    case 'STOPPED':
      throw new BuildFailedError(
        `build ${input.buildId} ${build.status} in phase ${build.phase}`,
        { data: describe(build) },
      );
    default:
      throw new BuildStatusUnknownError(
        `build ${input.buildId} has unknown status ${build.status}`,
        { data: describe(build) },
      );
  }
}

function describe(build: BuildState): Record<string, unknown> {
  return { buildId: build.buildId, status: build.status, phase: build.phase };
}
