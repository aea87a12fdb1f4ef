import { randomUUID } from 'node:crypto';
import {
  type DescribeExecutionCommandOutput,
  RedriveExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { Command } from 'commander';
import {
  type ExecutionInput,
  ExecutionInputSchema,
  runIdentity,
} from '../../functions/lib/pipeline/run-id.ts';
import { EXIT_FAILED, EXIT_OK } from '../exit.ts';
import {
  type CliContext,
  integerOption,
  resolveContext,
  withAwsConfiguration,
} from '../lib/context.ts';
import {
  describeExecution,
  isAwsError,
  isUnsuccessful,
  requester,
} from '../lib/executions.ts';
import { lastStateEntered } from '../lib/history.ts';
import { isoTime } from '../lib/render.ts';
import {
  type ExecutionRef,
  resolveExecution,
  resolveRegion,
  resolveStateMachine,
  sfnClient,
  TARGET_HELP,
} from '../lib/target.ts';
import type { RegisterCommand } from '../main.ts';

export interface RerunOptions {
  redrive?: boolean;
  maxRedrives?: string;
  stateMachine?: string;
  region?: string;
  json?: boolean;
}

/**
 * Redrives of one execution before a rerun starts afresh instead: every
 * redrive appends to the same history, and a failure that three redrives
 * did not get past needs a new run, not a fourth.
 */
const DEFAULT_MAX_REDRIVES = 3;

const HELP_AFTER = `
A failed, timed-out or aborted execution is redriven when Step Functions
allows it (within 14 days of its end, Standard workflows): it goes on from
the state where it stopped, with the same input and the same definition.
Otherwise a new execution starts with the same profile (bucket, key,
version) and a fresh name:
  - the execution succeeded, or is not redrivable (its redrive status says
    why, e.g. "Execution redrivable period exceeded"),
  - it failed through the pipeline's failure path (a Fail state): its test
    instance, image and build leftovers are already cleaned up, so there is
    nothing to go on from,
  - it was redriven --max-redrives times already (default
    ${DEFAULT_MAX_REDRIVES}),
  - --no-redrive is given (e.g. to pick up a new state machine definition).
A running execution is left alone (exit 1).
${TARGET_HELP}
The execution may be given by ARN, then --state-machine is not needed.

Exit codes: 0 redriven or started, 1 the execution is still running or AWS
refused, 2 usage or configuration error.
IAM: states:DescribeExecution, states:GetExecutionHistory and
states:RedriveExecution on the executions, states:StartExecution on the state
machine.`;

/** `sbc-ami rerun EXECUTION`: redrive it, or start it again. */
export const registerRerun: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('rerun')
    .description(
      'redrive an execution that did not succeed, or start a new one with ' +
        'the same profile',
    )
    .argument('<execution>', 'execution name or ARN')
    .option('--no-redrive', 'always start a new execution')
    .option(
      '--max-redrives <n>',
      'redrive at most N times, then start afresh ' +
        `(default ${DEFAULT_MAX_REDRIVES})`,
    )
    .option('--state-machine <arn>', 'the pipeline state machine')
    .option('--region <region>', 'AWS region (default: the ARN region)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', HELP_AFTER)
    .action(async (execution: string, options: RerunOptions) => {
      exit(await runRerun(execution, options));
    });
};

export type RerunAction = 'redriven' | 'started' | 'refused';

export interface RerunResult {
  readonly action: RerunAction;
  /** The execution asked about. */
  readonly previous: { readonly executionArn: string; readonly status: string };
  /** What runs now: the same execution redriven, or a new one. */
  readonly executionArn?: string;
  readonly name?: string;
  /** Why a new execution was started rather than a redrive, or a refusal. */
  readonly reason?: string;
  readonly redriveDate?: string;
}

/** Redrives or restarts the execution and says which; the exit code. */
export async function runRerun(
  text: string,
  options: RerunOptions,
  context: CliContext = {},
): Promise<number> {
  const { env, out, err } = resolveContext(context);
  const maxRedrives = integerOption('--max-redrives', options.maxRedrives, {
    min: 0,
    max: 1000,
    default: DEFAULT_MAX_REDRIVES,
  });
  const execution = resolveExecution(text, () =>
    resolveStateMachine(options.stateMachine, env),
  );
  const client = sfnClient(
    resolveRegion(options.region, execution.region),
    env,
  );

  const result = await withAwsConfiguration(execution.arn, async () => {
    const described = await describeExecution(client, execution);
    const previous = {
      executionArn: execution.arn,
      status: described.status ?? 'UNKNOWN',
    };
    if (
      described.status === 'RUNNING' ||
      described.status === 'PENDING_REDRIVE'
    ) {
      const where = await lastStateEntered(client, execution.arn);
      return {
        action: 'refused',
        previous,
        reason:
          `${execution.name} is ${spoken(described.status)}` +
          (where === undefined ? '' : ` (in ${where.name})`) +
          `, started ${isoTime(described.startDate)}`,
      } satisfies RerunResult;
    }

    const blocker = await redriveBlocker(
      client,
      execution,
      described,
      options.redrive !== false,
      maxRedrives,
    );
    if (blocker === undefined) {
      try {
        const redriven = await client.send(
          new RedriveExecutionCommand({ executionArn: execution.arn }),
        );
        return {
          action: 'redriven',
          previous,
          executionArn: execution.arn,
          name: execution.name,
          redriveDate: redriven.redriveDate?.toISOString(),
        } satisfies RerunResult;
      } catch (error) {
        if (!isAwsError(error, 'ExecutionNotRedrivable')) {
          throw error;
        }
        const { message } = error as Error;
        const reason = `Step Functions refused the redrive: ${message}`;
        return startAgain(client, execution, described, reason, env);
      }
    }
    return startAgain(client, execution, described, blocker, env);
  });

  if (options.json) {
    out(JSON.stringify(result, null, 2));
  } else if (result.action === 'refused') {
    err(`not rerun: ${result.reason}`);
    err(`follow it: sbc-ami status ${execution.name} --watch`);
  } else if (result.action === 'redriven') {
    out(
      `redriven ${execution.name} (was ${result.previous.status}): it goes ` +
        'on from the state where it stopped',
    );
    out(`  arn      ${result.executionArn}`);
    out(`follow it: sbc-ami status ${execution.name} --watch`);
  } else {
    out(
      `started ${result.name} with the same profile as ${execution.name} ` +
        `(was ${result.previous.status})`,
    );
    out(`  why      ${result.reason}`);
    out(`  arn      ${result.executionArn}`);
    out(`follow it: sbc-ami status ${result.name} --watch`);
  }
  return result.action === 'refused' ? EXIT_FAILED : EXIT_OK;
}

/**
 * Why this execution is not redriven, or nothing when it should be. Step
 * Functions has the last word: a redrive it refuses falls back to a new
 * execution too.
 */
async function redriveBlocker(
  client: SFNClient,
  execution: ExecutionRef,
  described: DescribeExecutionCommandOutput,
  redriveWanted: boolean,
  maxRedrives: number,
): Promise<string | undefined> {
  if (!isUnsuccessful(described.status)) {
    return described.status === 'SUCCEEDED'
      ? 'it succeeded; a rerun builds it again'
      : `it is ${described.status ?? 'in an unknown state'}`;
  }
  if (!redriveWanted) {
    return '--no-redrive was given';
  }
  if (described.redriveStatus === 'NOT_REDRIVABLE') {
    return (
      'it is not redrivable' +
      (described.redriveStatusReason
        ? `: ${described.redriveStatusReason}`
        : '')
    );
  }
  const redrives = described.redriveCount ?? 0;
  if (redrives >= maxRedrives) {
    return (
      `it was redriven ${redrives} times already ` +
      `(--max-redrives ${maxRedrives})`
    );
  }
  if (described.status === 'FAILED') {
    const last = await lastStateEntered(client, execution.arn);
    if (last?.type === 'Fail') {
      return (
        `it failed through the failure path (${last.name}): its test ` +
        'instance, image and leftovers are cleaned up, nothing to go on from'
      );
    }
  }
  return undefined;
}

/** `PENDING_REDRIVE` -> `pending redrive`. */
function spoken(status: string): string {
  return status.toLowerCase().replaceAll('_', ' ');
}

/** A new execution with the old one's profile and a fresh nonce. */
async function startAgain(
  client: SFNClient,
  execution: ExecutionRef,
  described: DescribeExecutionCommandOutput,
  reason: string,
  env: NodeJS.ProcessEnv,
): Promise<RerunResult> {
  const previousInput = parseInput(described, execution);
  const requestedBy = requester(env);
  const input: ExecutionInput = {
    trigger: {
      source: 'manual',
      ...(requestedBy === undefined ? {} : { requestedBy }),
      nonce: randomUUID(),
    },
    profile: previousInput.profile,
  };
  const identity = runIdentity(input);
  // The alias when it ran through one, else the state machine itself, so a
  // rerun picks up the definition deployed since.
  const stateMachineArn =
    described.stateMachineAliasArn ?? described.stateMachineArn;
  const started = await client.send(
    new StartExecutionCommand({
      stateMachineArn,
      name: identity.executionName,
      input: JSON.stringify(input),
    }),
  );
  return {
    action: 'started',
    previous: {
      executionArn: execution.arn,
      status: described.status ?? 'UNKNOWN',
    },
    executionArn: started.executionArn,
    name: identity.executionName,
    reason,
  };
}

function parseInput(
  described: DescribeExecutionCommandOutput,
  execution: ExecutionRef,
): ExecutionInput {
  let json: unknown;
  try {
    json = JSON.parse(described.input ?? '');
  } catch (error) {
    throw new Error(
      `cannot start ${execution.name} again: its input is not readable JSON ` +
        '(is states:DescribeExecution allowed to see execution data?)',
      { cause: error },
    );
  }
  const parsed = ExecutionInputSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`,
    );
    throw new Error(
      `cannot start ${execution.name} again: its input is not a pipeline ` +
        `input (${problems.join('; ')})`,
    );
  }
  return parsed.data;
}
