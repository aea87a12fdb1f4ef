import { randomUUID } from 'node:crypto';
import {
  type DescribeExecutionCommandOutput,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { Command } from 'commander';
import {
  type ExecutionInput,
  ExecutionInputSchema,
  type ProfileRef,
  runIdentity,
} from '../../functions/lib/pipeline/run-id.ts';
import { EXIT_OK, UsageError } from '../exit.ts';
import {
  type CliContext,
  resolveContext,
  withAwsConfiguration,
} from '../lib/context.ts';
import { describeExecution, isAwsError, requester } from '../lib/executions.ts';
import { isoTime, profileOf, verdictText } from '../lib/render.ts';
import {
  executionArn,
  resolveConfigBucket,
  resolveRegion,
  resolveStateMachine,
  sfnClient,
  stateMachineLabel,
  TARGET_HELP,
} from '../lib/target.ts';
import type { RegisterCommand } from '../main.ts';

export interface RunOptions {
  versionId?: string;
  force?: boolean;
  bucket?: string;
  stateMachine?: string;
  region?: string;
  json?: boolean;
}

const HELP_AFTER = `
The execution's name is derived from the profile (bucket, key, version), so
running the same profile version twice names the same execution: the second
run says it exists and shows its status instead of building again. Without
--version-id the pipeline builds the latest version of the key, and the name
is that of "the latest version", so a later upload needs --version-id or
--force. --force starts a deliberate new run with a fresh name.
${TARGET_HELP}

Exit codes: 0 started or already there, 2 usage or configuration error,
1 anything else (AWS refused the call).
IAM: states:StartExecution on the state machine, states:DescribeExecution on
its executions.`;

/**
 * A request signed with a clock more than 5 minutes off is refused, so an
 * execution whose start is older than that existed before this call: Step
 * Functions answers a repeated StartExecution (same name and input, still
 * running) with the original execution instead of an error.
 */
const CLOCK_TOLERANCE_MS = 5 * 60_000;

/** `sbc-ami run PROFILE_KEY`: starts an execution for a profile. */
export const registerRun: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('run')
    .description(
      'start a pipeline execution for a SIP profile in the config bucket',
    )
    .argument(
      '<profile-key>',
      'S3 key of the profile in the config bucket (or s3://BUCKET/KEY)',
    )
    .option('--version-id <id>', 'build this object version (default: latest)')
    .option('--force', 'start a new run even if this profile version ran')
    .option('--bucket <name>', 'the config bucket')
    .option('--state-machine <arn>', 'the pipeline state machine')
    .option('--region <region>', 'AWS region (default: the ARN region)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', HELP_AFTER)
    .action(async (profileKey: string, options: RunOptions) => {
      exit(await runRun(profileKey, options));
    });
};

export type RunAction = 'started' | 'running' | 'exists';

export interface RunResult {
  readonly action: RunAction;
  readonly name: string;
  readonly executionArn: string;
  readonly runId: string;
  readonly status: string;
  readonly startDate?: string;
  /** Why an execution that already existed failed. */
  readonly error?: string;
  readonly cause?: string;
  readonly input: ExecutionInput;
}

/** Starts the execution (or finds it) and prints what happened. */
export async function runRun(
  profileKey: string,
  options: RunOptions,
  context: CliContext = {},
): Promise<number> {
  const { env, out, now } = resolveContext(context);
  const machine = resolveStateMachine(options.stateMachine, env);
  const region = resolveRegion(options.region, machine.region);
  const profile = profileRef(profileKey, options, env);
  const input = executionInput(profile, options.force === true, env);
  const identity = runIdentity(input);
  const client = sfnClient(region, env);

  const { result, described } = await withAwsConfiguration(
    stateMachineLabel(machine),
    async (): Promise<RunOutcome> => {
      const base = { name: identity.executionName, runId: identity.runId };
      const sentAt = now().getTime();
      try {
        const started = await client.send(
          new StartExecutionCommand({
            stateMachineArn: machine.arn,
            name: identity.executionName,
            input: JSON.stringify(input),
          }),
        );
        const startDate = started.startDate ?? new Date(sentAt);
        const earlier = startDate.getTime() < sentAt - CLOCK_TOLERANCE_MS;
        return {
          result: {
            ...base,
            action: earlier ? 'running' : 'started',
            executionArn: started.executionArn ?? '',
            status: 'RUNNING',
            startDate: startDate.toISOString(),
            input,
          },
        };
      } catch (error) {
        if (!isAwsError(error, 'ExecutionAlreadyExists')) {
          throw error;
        }
      }
      const arn = executionArn(machine, identity.executionName);
      const existing = await describeExecution(client, {
        arn,
        region,
        stateMachineName: machine.name,
        name: identity.executionName,
        stateMachine: machine,
      });
      return {
        result: {
          ...base,
          action: 'exists',
          executionArn: arn,
          status: existing.status ?? 'UNKNOWN',
          startDate: existing.startDate?.toISOString(),
          error: existing.error,
          cause: existing.cause,
          input,
        },
        described: existing,
      };
    },
  );

  if (options.json) {
    out(JSON.stringify(result, null, 2));
  } else {
    printRun(result, described, out, now());
  }
  return EXIT_OK;
}

interface RunOutcome {
  readonly result: RunResult;
  /** The execution that already existed under the name. */
  readonly described?: DescribeExecutionCommandOutput;
}

function printRun(
  result: RunResult,
  described: DescribeExecutionCommandOutput | undefined,
  out: (text: string) => void,
  now: Date,
): void {
  const startDate =
    result.startDate === undefined ? undefined : new Date(result.startDate);
  if (result.action === 'exists') {
    out(
      `already exists: ${result.name} is ${result.status} ` +
        `(started ${isoTime(startDate)})`,
    );
  } else if (result.action === 'running') {
    out(`already running: ${result.name} (since ${isoTime(startDate)})`);
  } else {
    out(`started ${result.name}`);
  }
  out(`  arn      ${result.executionArn}`);
  out(`  run id   ${result.runId}`);
  out(`  profile  ${profileOf(JSON.stringify(result.input))}`);
  if (described !== undefined) {
    out(`  verdict  ${verdictText(described, now)}`);
  }

  if (result.action === 'exists' && result.status !== 'RUNNING') {
    out('this profile version already ran; to run it again:');
    out(`  sbc-ami rerun ${result.name}   (redrive, or the same input anew)`);
    if (result.input.profile.versionId === undefined) {
      out('  --version-id ID                (a newer upload of the profile)');
    }
    out('  --force                        (a deliberate new run)');
    return;
  }
  out(`follow it: sbc-ami status ${result.name} --watch`);
}

/** The profile's location from the argument and the bucket setting. */
function profileRef(
  argument: string,
  options: RunOptions,
  env: NodeJS.ProcessEnv,
): ProfileRef {
  let key = argument.trim();
  let bucket: string;
  const uri = /^s3:\/\/([^/]+)\/(.+)$/.exec(key);
  if (uri !== null) {
    const [, uriBucket, uriKey] = uri as unknown as string[];
    if (options.bucket !== undefined && options.bucket !== uriBucket) {
      throw new UsageError(
        `--bucket ${options.bucket} and the profile's s3://${uriBucket} ` +
          'disagree: give one of them',
      );
    }
    bucket = resolveConfigBucket(uriBucket, {});
    key = uriKey as string;
  } else {
    bucket = resolveConfigBucket(options.bucket, env);
  }
  if (key === '' || key.startsWith('/') || key.startsWith('s3:')) {
    throw new UsageError(
      `profile key "${argument}" must be a key in the bucket, like ` +
        'profiles/us-east-1.json, or s3://BUCKET/KEY',
    );
  }
  if (options.versionId !== undefined && options.versionId.trim() === '') {
    throw new UsageError('--version-id must not be empty');
  }
  return {
    bucket,
    key,
    ...(options.versionId === undefined
      ? {}
      : { versionId: options.versionId.trim() }),
  };
}

/**
 * The execution input. A plain run carries nothing but the profile, so the
 * same version asked for twice, by anyone, names the same execution; only a
 * forced run adds a nonce, and with it who asked.
 */
function executionInput(
  profile: ProfileRef,
  force: boolean,
  env: NodeJS.ProcessEnv,
): ExecutionInput {
  const requestedBy = force ? requester(env) : undefined;
  const candidate = {
    trigger: {
      source: 'manual',
      ...(requestedBy === undefined ? {} : { requestedBy }),
      ...(force ? { nonce: randomUUID() } : {}),
    },
    profile,
  };
  const parsed = ExecutionInputSchema.safeParse(candidate);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new UsageError(`invalid execution input: ${problems.join('; ')}`);
  }
  return parsed.data;
}
