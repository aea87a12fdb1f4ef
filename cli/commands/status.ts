import {
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
} from '@aws-sdk/client-sfn';
import type { Command } from 'commander';
import { EXIT_OK, UsageError } from '../exit.ts';
import {
  type CliContext,
  integerOption,
  type ResolvedContext,
  resolveContext,
  withAwsConfiguration,
} from '../lib/context.ts';
import { describeExecution, exitCodeOf } from '../lib/executions.ts';
import { readHistory } from '../lib/history.ts';
import {
  type Progress,
  type ProgressRow,
  summarizeHistory,
} from '../lib/progress.ts';
import { formatExecution, formatExecutionList } from '../lib/render.ts';
import {
  type ExecutionRef,
  resolveExecution,
  resolveRegion,
  resolveStateMachine,
  sfnClient,
  stateMachineLabel,
  TARGET_HELP,
} from '../lib/target.ts';
import {
  AppendView,
  type ProgressView,
  RedrawView,
  type Terminal,
  watchExecution,
} from '../lib/watch.ts';
import type { RegisterCommand } from '../main.ts';

export interface StatusOptions {
  watch?: boolean;
  interval?: string;
  limit?: string;
  stateMachine?: string;
  region?: string;
  json?: boolean;
}

/** Exit code of a watch stopped with Ctrl-C (128 + SIGINT), by convention. */
export const EXIT_INTERRUPTED = 130;

const INTERVAL = { min: 2, max: 300, default: 10 };
const LIMIT = { min: 1, max: 100, default: 10 };

const HELP_AFTER = `
Without an execution: the latest executions of the state machine.
With one: each state with its time, retries and caught errors (a wait loop
is one row, e.g. "CheckBuild x7 (IN_PROGRESS x6, SUCCEEDED)"), the state
running now, and the verdict with the failure's error and cause.
--watch polls until the execution ends: on a terminal the picture is drawn
again in place; in a log or pipe a row is written once it is final.
${TARGET_HELP}
The execution may be given by ARN, then --state-machine is not needed.

Exit codes: 0 succeeded or still running, 1 failed, timed out or aborted,
2 usage or configuration error, ${EXIT_INTERRUPTED} watch stopped by Ctrl-C.
IAM: states:ListExecutions on the state machine, states:DescribeExecution
and states:GetExecutionHistory on its executions (and kms:Decrypt when the
state machine encrypts its data with a customer managed key).`;

/** `sbc-ami status [EXECUTION] [--watch]`. */
export const registerStatus: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('status')
    .description(
      'the latest executions, or one execution state by state ' +
        '(--watch: until it ends)',
    )
    .argument('[execution]', 'execution name or ARN')
    .option('--watch', 'follow the execution until it ends')
    .option(
      '--interval <seconds>',
      `seconds between polls with --watch (${INTERVAL.min}-${INTERVAL.max}, ` +
        `default ${INTERVAL.default})`,
    )
    .option(
      '--limit <n>',
      `executions to list (${LIMIT.min}-${LIMIT.max}, ` +
        `default ${LIMIT.default})`,
    )
    .option('--state-machine <arn>', 'the pipeline state machine')
    .option('--region <region>', 'AWS region (default: the ARN region)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', HELP_AFTER)
    .action(async (execution: string | undefined, options: StatusOptions) => {
      exit(await runStatus(execution, options));
    });
};

export interface StatusContext extends CliContext {
  /** Stops a watch; Ctrl-C does too. */
  readonly signal?: AbortSignal;
  /** Between polls, overriding --interval (tests). */
  readonly intervalMs?: number;
  /**
   * The terminal to redraw on; default standard output when it is a TTY.
   * `null` writes lines through `out` instead.
   */
  readonly terminal?: Terminal | null;
}

/** Lists, shows or watches; resolves to the exit code. */
export async function runStatus(
  text: string | undefined,
  options: StatusOptions,
  context: StatusContext = {},
): Promise<number> {
  const resolved = resolveContext(context);
  const { env } = resolved;
  const intervalSeconds = integerOption(
    '--interval',
    options.interval,
    INTERVAL,
  );
  const limit = integerOption('--limit', options.limit, LIMIT);
  if (text === undefined) {
    if (options.watch || options.interval !== undefined) {
      throw new UsageError('--watch and --interval need an EXECUTION');
    }
    return listExecutions(options, limit, resolved);
  }
  if (options.limit !== undefined) {
    throw new UsageError('--limit applies to the list, without EXECUTION');
  }
  if (options.interval !== undefined && !options.watch) {
    throw new UsageError('--interval applies to --watch');
  }

  const execution = resolveExecution(text, () =>
    resolveStateMachine(options.stateMachine, env),
  );
  const client = sfnClient(
    resolveRegion(options.region, execution.region),
    env,
  );

  if (!options.watch) {
    return withAwsConfiguration(execution.arn, async () => {
      const described = await describeExecution(client, execution);
      const events = await readHistory(client, execution.arn);
      const progress = summarizeHistory(events);
      print(described, progress, options, resolved);
      return exitCodeOf(described.status);
    });
  }

  return watch(execution, options, context, {
    client,
    intervalMs: context.intervalMs ?? intervalSeconds * 1000,
  });
}

async function listExecutions(
  options: StatusOptions,
  limit: number,
  context: ResolvedContext,
): Promise<number> {
  const machine = resolveStateMachine(options.stateMachine, context.env);
  const client = sfnClient(
    resolveRegion(options.region, machine.region),
    context.env,
  );
  const page = await withAwsConfiguration(stateMachineLabel(machine), () =>
    client.send(
      new ListExecutionsCommand({
        stateMachineArn: machine.arn,
        maxResults: limit,
      }),
    ),
  );
  const executions = page.executions ?? [];
  if (options.json) {
    context.out(JSON.stringify(executions, null, 2));
  } else {
    context.out(formatExecutionList(executions, context.now()));
    if (page.nextToken !== undefined) {
      context.out(`(the latest ${executions.length}; --limit shows more)`);
    }
  }
  return EXIT_OK;
}

async function watch(
  execution: ExecutionRef,
  options: StatusOptions,
  context: StatusContext,
  args: {
    readonly client: ReturnType<typeof sfnClient>;
    readonly intervalMs: number;
  },
): Promise<number> {
  const resolved = resolveContext(context);
  const terminal =
    context.terminal === undefined
      ? process.stdout.isTTY
        ? process.stdout
        : null
      : context.terminal;
  const last = new LastView();
  const view: ProgressView = options.json
    ? last
    : terminal === null
      ? new AppendView(resolved.out)
      : new RedrawView(terminal);

  const interrupt = new AbortController();
  const onInterrupt = () => interrupt.abort();
  process.once('SIGINT', onInterrupt);
  const signal =
    context.signal === undefined
      ? interrupt.signal
      : AbortSignal.any([interrupt.signal, context.signal]);
  try {
    const described = await withAwsConfiguration(execution.arn, () =>
      watchExecution({
        client: args.client,
        execution,
        view,
        intervalMs: args.intervalMs,
        signal,
        now: resolved.now,
      }),
    );
    if (options.json && last.progress !== undefined) {
      resolved.out(
        JSON.stringify(executionDocument(described, last.progress), null, 2),
      );
    }
    return exitCodeOf(described.status);
  } catch (error) {
    if (signal.aborted) {
      resolved.err(
        `stopped watching ${execution.name}; it goes on in Step Functions`,
      );
      return EXIT_INTERRUPTED;
    }
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

function print(
  described: DescribeExecutionCommandOutput,
  progress: Progress,
  options: StatusOptions,
  context: ResolvedContext,
): void {
  if (options.json) {
    context.out(
      JSON.stringify(executionDocument(described, progress), null, 2),
    );
    return;
  }
  for (const line of formatExecution(described, progress, context.now())) {
    context.out(line);
  }
}

/** Keeps the latest picture, for `--watch --json`. */
class LastView implements ProgressView {
  progress: Progress | undefined;

  show(_execution: DescribeExecutionCommandOutput, progress: Progress): void {
    this.progress = progress;
  }
}

/** The machine-readable form of one execution's progress. */
export function executionDocument(
  described: DescribeExecutionCommandOutput,
  progress: Progress,
): Record<string, unknown> {
  return {
    name: described.name,
    executionArn: described.executionArn,
    stateMachineArn: described.stateMachineArn,
    status: described.status,
    startDate: described.startDate?.toISOString(),
    stopDate: described.stopDate?.toISOString(),
    redriveCount: described.redriveCount ?? 0,
    redriveStatus: described.redriveStatus,
    error: described.error,
    cause: described.cause,
    input: parseJson(described.input),
    steps: progress.rows.map(stepDocument),
    current:
      progress.current === undefined
        ? undefined
        : { ...progress.current, since: progress.current.since.toISOString() },
  };
}

function stepDocument(row: ProgressRow): Record<string, unknown> {
  if (row.kind === 'redrive') {
    return { redrive: row.count, at: row.at.toISOString() };
  }
  return {
    state: row.state,
    type: row.type,
    outcome: row.outcome,
    visits: row.visits,
    attempts: row.attempts,
    retried: row.retried,
    observed: row.observed,
    waitedIn: row.waitedIn,
    startedAt: row.startedAt.toISOString(),
    endedAt: row.endedAt?.toISOString(),
    error: row.error,
    next: row.next,
  };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
