import type {
  DescribeExecutionCommandOutput,
  ExecutionListItem,
} from '@aws-sdk/client-sfn';
import Table from 'cli-table3';
import { describeFailure, hasEnded, readableCause } from './executions.ts';
import type {
  CurrentStep,
  Progress,
  ProgressRow,
  RowOutcome,
  StateRow,
} from './progress.ts';

const MARKS: Record<RowOutcome, string> = {
  running: '..',
  ok: 'ok',
  caught: 'caught',
  failed: 'FAILED',
  stopped: 'stopped',
};

const LABEL_WIDTH = 46;
const DETAIL_INDENT = ' '.repeat(10);
/** Longest cause shown on a row; the verdict shows the whole of it. */
const CAUSE_WIDTH = 160;

/** `0.8s`, `12s`, `3m 05s`, `2h 04m`. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) {
    return `${seconds.toFixed(1)}s`;
  }
  if (seconds < 60) {
    return `${Math.floor(seconds)}s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes}m ${pad2(Math.floor(seconds % 60))}s`;
  }
  return `${Math.floor(minutes / 60)}h ${pad2(minutes % 60)}m`;
}

/** The lines of one row: the state, then its retries and errors. */
export function formatRow(row: ProgressRow, now: Date): string[] {
  if (row.kind === 'redrive') {
    return [`  -- redriven (redrive ${row.count}) at ${isoTime(row.at)}`];
  }
  const elapsed = (row.endedAt ?? now).getTime() - row.startedAt.getTime();
  // A Fail or Succeed state takes no time: it only names the end.
  const final = row.type === 'Fail' || row.type === 'Succeed';
  const label = rowLabel(row);
  const lines = [
    final
      ? `  ${MARKS[row.outcome].padEnd(7)} ${label}`
      : `  ${MARKS[row.outcome].padEnd(7)} ${label.padEnd(LABEL_WIDTH)} ` +
        formatDuration(elapsed).padStart(8),
  ];
  if (row.retried.length > 0) {
    lines.push(
      `${DETAIL_INDENT}retried x${row.retried.length}: ` +
        countedList(row.retried),
    );
  }
  if (row.outcome === 'caught' && row.error !== undefined) {
    lines.push(
      `${DETAIL_INDENT}caught ${shortFailure(row.error)}` +
        (row.next === undefined ? '' : ` -> ${row.next}`),
    );
  } else if (row.outcome !== 'ok' && row.error !== undefined) {
    const failure = shortFailure(row.error);
    if (failure !== '') {
      lines.push(`${DETAIL_INDENT}${failure}`);
    }
  }
  return lines;
}

/**
 * `CheckBuild x7 (IN_PROGRESS x6, SUCCEEDED)`: a loop's checks in one
 * label, what they saw in runs of the same value.
 */
export function rowLabel(row: StateRow): string {
  const loop = row.visits > 1 || row.waitedIn !== undefined;
  let label = row.visits > 1 ? `${row.state} x${row.visits}` : row.state;
  if (loop && row.observed.length > 0) {
    label += ` (${observedRuns(row.observed)})`;
  }
  return label;
}

/** The line saying what runs now. */
export function formatCurrent(current: CurrentStep, now: Date): string {
  const since = formatDuration(now.getTime() - current.since.getTime());
  if (current.waiting) {
    const then =
      current.leadsTo === undefined ? '' : `, then ${current.leadsTo}`;
    return `now        waiting in ${current.state}${then} (${since})`;
  }
  return `now        ${current.state} (${since})`;
}

/** Every line of one execution's progress, header to verdict. */
export function formatExecution(
  execution: DescribeExecutionCommandOutput,
  progress: Progress,
  now: Date,
): string[] {
  const lines = [...formatHeader(execution)];
  for (const row of progress.rows) {
    lines.push(...formatRow(row, now));
  }
  if (progress.current !== undefined && !hasEnded(execution.status)) {
    lines.push(formatCurrent(progress.current, now));
  }
  lines.push(formatVerdict(execution, now));
  return lines;
}

/** Name, ARN, profile and start of an execution. */
export function formatHeader(
  execution: DescribeExecutionCommandOutput,
): string[] {
  const lines = [
    `execution  ${execution.name ?? '?'}`,
    `arn        ${execution.executionArn ?? '?'}`,
  ];
  const input = profileOf(execution.input);
  if (input !== undefined) {
    lines.push(`profile    ${input}`);
  }
  const redrives = execution.redriveCount ?? 0;
  lines.push(
    `started    ${isoTime(execution.startDate)}` +
      (redrives > 0 ? `, redriven ${redrives}x` : ''),
  );
  return lines;
}

/** The final word: status, how long, and why it failed. */
export function formatVerdict(
  execution: DescribeExecutionCommandOutput,
  now: Date,
): string {
  return `verdict    ${verdictText(execution, now)}`;
}

/** `FAILED after 37m 35s: SmokeTestFailedError: ...`. */
export function verdictText(
  execution: DescribeExecutionCommandOutput,
  now: Date,
): string {
  const status = execution.status ?? 'UNKNOWN';
  const start = execution.startDate?.getTime() ?? now.getTime();
  const elapsed = formatDuration((execution.stopDate ?? now).getTime() - start);
  if (!hasEnded(status)) {
    return `${status} for ${elapsed}, not finished`;
  }
  if (status === 'SUCCEEDED') {
    return `SUCCEEDED in ${elapsed}`;
  }
  const why = describeFailure(execution.error, execution.cause);
  return `${status} after ${elapsed}${why ? `: ${why}` : ''}`;
}

/** The latest executions of the state machine, one line each. */
export function formatExecutionList(
  executions: readonly ExecutionListItem[],
  now: Date,
): string {
  if (executions.length === 0) {
    return 'no executions yet';
  }
  const table = new Table({
    head: ['name', 'status', 'started', 'duration', 'redrives'],
    // Plain text: the table goes to CI logs as often as to a terminal.
    style: { head: [], border: [], compact: true },
  });
  for (const item of executions) {
    const start = item.startDate?.getTime() ?? now.getTime();
    const duration = formatDuration((item.stopDate ?? now).getTime() - start);
    table.push([
      item.name ?? '?',
      item.status ?? '?',
      isoTime(item.startDate),
      hasEnded(item.status) ? duration : `${duration} so far`,
      String(item.redriveCount ?? 0),
    ]);
  }
  return table.toString();
}

/** `2025-06-01 12:00:03Z`. */
export function isoTime(date: Date | undefined): string {
  if (date === undefined) {
    return '?';
  }
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** `s3://bucket/key (version V)` from an execution's input, if readable. */
export function profileOf(input: string | undefined): string | undefined {
  if (input === undefined) {
    return undefined;
  }
  try {
    const parsed = JSON.parse(input) as {
      trigger?: { source?: string };
      profile?: { bucket?: string; key?: string; versionId?: string };
    };
    const profile = parsed.profile;
    if (profile?.key === undefined) {
      return undefined;
    }
    const where =
      profile.bucket === undefined
        ? profile.key
        : `s3://${profile.bucket}/${profile.key}`;
    const version =
      profile.versionId === undefined
        ? 'latest version'
        : `version ${profile.versionId}`;
    const source = parsed.trigger?.source;
    return `${where} (${version})${source ? `, ${source} trigger` : ''}`;
  } catch {
    return undefined;
  }
}

function shortFailure(error: { error?: string; cause?: string }): string {
  const cause = readableCause(error.cause)?.split('\n')[0];
  const short =
    cause !== undefined && cause.length > CAUSE_WIDTH
      ? `${cause.slice(0, CAUSE_WIDTH - 3)}...`
      : cause;
  return describeFailure(error.error, short) ?? '';
}

/** `IN_PROGRESS x6, SUCCEEDED`; one run alone is shown without a count. */
function observedRuns(values: readonly string[]): string {
  const runs: { value: string; count: number }[] = [];
  for (const value of values) {
    const last = runs.at(-1);
    if (last?.value === value) {
      last.count += 1;
    } else {
      runs.push({ value, count: 1 });
    }
  }
  if (runs.length === 1) {
    return runs[0]?.value ?? '';
  }
  return runs
    .map((run) => (run.count > 1 ? `${run.value} x${run.count}` : run.value))
    .join(', ');
}

/** `Lambda.TooManyRequestsException x2, ThrottledError`. */
function countedList(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) {
    counts.set(value, (counts.get(value) ?? 0) + 1);
  }
  return [...counts]
    .map(([value, count]) => (count > 1 ? `${value} x${count}` : value))
    .join(', ');
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}
