import { z } from 'zod';
import { describeError, isThrottling, TestInstanceError } from '../errors.ts';
import type { TestHostRunner } from '../ports.ts';
import { continuePoll, PollSchema, startPoll } from './poll.ts';
import type { PipelineSettings } from './settings.ts';

const RunFields = {
  runId: z.string().min(1),
  execution: z.string().min(1),
};

export const LaunchInputSchema = z.strictObject({
  ...RunFields,
  imageId: z.string().min(1),
});

export const CheckHostInputSchema = z.strictObject({
  ...RunFields,
  instanceId: z.string().min(1),
  poll: PollSchema,
});

export const TerminateInputSchema = z.strictObject({
  ...RunFields,
  /** Null when no test instance was launched: nothing to do. */
  instanceId: z.string().min(1).nullable(),
});

export type LaunchInput = z.infer<typeof LaunchInputSchema>;
export type CheckHostInput = z.infer<typeof CheckHostInputSchema>;
export type TerminateInput = z.infer<typeof TerminateInputSchema>;

/** `$.instance` in the state. */
export interface HostStep {
  readonly instanceId: string;
  readonly state: 'WAITING' | 'DONE';
  readonly address: string | null;
  readonly poll: z.infer<typeof PollSchema>;
}

export interface HostDeps {
  readonly hosts: TestHostRunner;
  readonly settings: PipelineSettings;
  readonly now: () => Date;
}

/** States a test instance does not come back from. */
const DEAD_STATES = new Set([
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
]);

/** Launches the test instance from the new image, tagged with the run. */
export async function launchTestHost(
  input: LaunchInput,
  deps: HostDeps,
): Promise<HostStep> {
  const { instanceId } = await deps.hosts.launch({
    runId: input.runId,
    imageId: input.imageId,
  });
  return {
    instanceId,
    state: 'WAITING',
    address: null,
    poll: startPoll(deps.now(), deps.settings.instance.waitSeconds),
  };
}

/** Looks at the test instance once: running and reachable goes on. */
export async function checkTestHost(
  input: CheckHostInput,
  deps: HostDeps,
): Promise<HostStep> {
  const status = await deps.hosts.status(input.instanceId);
  if (status !== undefined && DEAD_STATES.has(status.state)) {
    throw new TestInstanceError(
      `test instance ${input.instanceId} is ${status.state}` +
        (status.detail === undefined ? '' : `: ${status.detail}`),
      { data: { instanceId: input.instanceId, state: status.state } },
    );
  }
  if (status?.state === 'running' && status.reachable) {
    if (status.address === undefined) {
      throw new TestInstanceError(
        `test instance ${input.instanceId} is running but has no address`,
      );
    }
    return {
      instanceId: input.instanceId,
      state: 'DONE',
      address: status.address,
      poll: input.poll,
    };
  }

  const observed =
    status === undefined
      ? 'not visible yet'
      : `${status.state}${status.detail === undefined ? '' : ` (${status.detail})`}`;
  return {
    instanceId: input.instanceId,
    state: 'WAITING',
    address: null,
    poll: continuePoll(input.poll, {
      now: deps.now(),
      what: `test instance ${input.instanceId}`,
      observed,
      waitSeconds: deps.settings.instance.waitSeconds,
      deadlineMinutes: deps.settings.instance.deadlineMinutes,
    }),
  };
}

export interface TerminateResult {
  readonly instanceId: string | null;
  readonly outcome: 'terminated' | 'already-gone' | 'none' | 'failed';
  /** What a person must delete by hand. */
  readonly leftBehind: string[];
}

/**
 * Terminates the test instance. Never fails the run for it: a refusal is
 * reported as left behind, for a person to terminate by hand. Throttling
 * still throws, so the state machine retries it.
 */
export async function terminateTestHost(
  input: TerminateInput,
  deps: Pick<HostDeps, 'hosts'>,
): Promise<TerminateResult> {
  if (input.instanceId === null) {
    return { instanceId: null, outcome: 'none', leftBehind: [] };
  }
  try {
    const outcome = await deps.hosts.terminate(input.instanceId);
    return {
      instanceId: input.instanceId,
      outcome: outcome === 'deleted' ? 'terminated' : 'already-gone',
      leftBehind: [],
    };
  } catch (error) {
    if (isThrottling(error)) {
      throw error;
    }
    return {
      instanceId: input.instanceId,
      outcome: 'failed',
      leftBehind: [`instance ${input.instanceId}: ${describeError(error)}`],
    };
  }
}
