import type { HistoryEvent } from '@aws-sdk/client-sfn';

/** How a row of the progress display stands. */
export type RowOutcome = 'running' | 'ok' | 'caught' | 'failed' | 'stopped';

/** An error as Step Functions reports it: a name and a cause. */
export interface StepError {
  readonly error?: string;
  readonly cause?: string;
}

/**
 * One row of the display: a state, or a wait loop folded into the state it
 * polls with (`WaitForBuild`, `CheckBuild`, `BuildReady` seven times is one
 * `CheckBuild x7` row).
 */
export interface StateRow {
  readonly kind: 'state';
  readonly state: string;
  readonly type: string;
  /** Times the state was entered in a row (the loop's checks). */
  visits: number;
  /** Task attempts: every scheduling of the function, retries included. */
  attempts: number;
  /** The errors of the attempts that were retried, in order. */
  readonly retried: string[];
  /** What each check observed (`IN_PROGRESS`, `pending`, `DONE`). */
  readonly observed: string[];
  /** The Wait state folded into this row, if any. */
  waitedIn?: string;
  startedAt: Date;
  endedAt?: Date;
  outcome: RowOutcome;
  /** The error that was caught, or that failed the execution here. */
  error?: StepError;
  /** Where a caught error went. */
  next?: string;
}

/** A redrive: the execution went on from where it had stopped. */
export interface RedriveRow {
  readonly kind: 'redrive';
  readonly at: Date;
  readonly count: number;
}

export type ProgressRow = StateRow | RedriveRow;

/** What the execution is doing now, when it runs. */
export interface CurrentStep {
  readonly state: string;
  readonly since: Date;
  /** In a Wait state rather than running a state. */
  readonly waiting: boolean;
  /** The state the wait leads back to: the loop's next check. */
  readonly leadsTo?: string;
}

/** The execution's end, as its history tells it. */
export interface HistoryEnd {
  readonly status: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  readonly at: Date;
  readonly error?: string;
  readonly cause?: string;
}

/** The execution history folded into rows a person can read. */
export interface Progress {
  readonly rows: ProgressRow[];
  readonly startedAt?: Date;
  readonly current?: CurrentStep;
  readonly end?: HistoryEnd;
  /** The last state entered: where a failed execution stopped. */
  readonly lastState?: { readonly name: string; readonly type: string };
  readonly events: number;
}

/** Event types whose details carry the error of a failed attempt. */
const ATTEMPT_FAILED = new Set([
  'LambdaFunctionFailed',
  'LambdaFunctionTimedOut',
  'LambdaFunctionScheduleFailed',
  'LambdaFunctionStartFailed',
  'TaskFailed',
  'TaskTimedOut',
  'TaskStartFailed',
  'TaskSubmitFailed',
  'ActivityFailed',
  'ActivityTimedOut',
  'ActivityScheduleFailed',
]);

const ATTEMPT_SCHEDULED = new Set([
  'LambdaFunctionScheduled',
  'TaskScheduled',
  'ActivityScheduled',
]);

const ATTEMPT_SUCCEEDED = new Set([
  'LambdaFunctionSucceeded',
  'TaskSucceeded',
  'ActivitySucceeded',
]);

const EXECUTION_ENDS: Record<string, HistoryEnd['status']> = {
  ExecutionSucceeded: 'SUCCEEDED',
  ExecutionFailed: 'FAILED',
  ExecutionTimedOut: 'TIMED_OUT',
  ExecutionAborted: 'ABORTED',
};

interface OpenVisit {
  readonly row: StateRow;
  readonly enteredAt: Date;
  failure?: StepError;
}

interface PendingWait {
  readonly name: string;
  readonly enteredAt: Date;
  exited: boolean;
}

/**
 * Folds an execution history, oldest event first, into display rows.
 * A pure function of the events: the watch loop calls it again with the
 * longer history on every poll.
 */
export function summarizeHistory(events: readonly HistoryEvent[]): Progress {
  const fold = new HistoryFold();
  const sorted = [...events].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  for (const event of sorted) {
    fold.add(event);
  }
  return fold.progress(sorted.length);
}

/** The fold's state between two events. */
class HistoryFold {
  readonly #rows: ProgressRow[] = [];
  #startedAt: Date | undefined;
  /** The state entered and not yet left. */
  #open: OpenVisit | undefined;
  /** A Wait entered: folded into the state that follows it. */
  #wait: PendingWait | undefined;
  /** A row whose error was caught, until the Catch target is entered. */
  #caught: StateRow | undefined;
  #end: HistoryEnd | undefined;
  #lastState: Progress['lastState'];

  add(event: HistoryEvent): void {
    const type = event.type ?? '';
    const at = event.timestamp ?? new Date(0);
    if (type === 'ExecutionStarted') {
      this.#startedAt = at;
    } else if (type === 'ExecutionRedriven') {
      this.#redriven(event, at);
    } else if (type.endsWith('StateEntered')) {
      this.#entered(
        event.stateEnteredEventDetails?.name ?? '?',
        type.slice(0, -'StateEntered'.length),
        at,
      );
    } else if (type.endsWith('StateExited')) {
      this.#exited(event.stateExitedEventDetails?.name, at);
    } else if (type.endsWith('StateAborted') && this.#open !== undefined) {
      this.#open.row.outcome = 'stopped';
      this.#open.row.endedAt = at;
      this.#open = undefined;
    } else if (ATTEMPT_SCHEDULED.has(type)) {
      this.#scheduled();
    } else if (ATTEMPT_FAILED.has(type) && this.#open !== undefined) {
      this.#open.failure = errorOf(event);
    } else if (ATTEMPT_SUCCEEDED.has(type) && this.#open !== undefined) {
      this.#open.failure = undefined;
      const observed = observedIn(outputOf(event));
      if (observed !== undefined) {
        this.#open.row.observed.push(observed);
      }
    } else if (type in EXECUTION_ENDS) {
      this.#ended(EXECUTION_ENDS[type] as HistoryEnd['status'], event, at);
    }
  }

  progress(events: number): Progress {
    return {
      rows: this.#rows,
      startedAt: this.#startedAt,
      current: this.#end === undefined ? this.#current() : undefined,
      end: this.#end,
      lastState: this.#lastState,
      events,
    };
  }

  #redriven(event: HistoryEvent, at: Date): void {
    this.#rows.push({
      kind: 'redrive',
      at,
      count: event.executionRedrivenEventDetails?.redriveCount ?? 0,
    });
    this.#end = undefined;
    this.#open = undefined;
    this.#wait = undefined;
  }

  #entered(name: string, type: string, at: Date): void {
    this.#lastState = { name, type };
    if (this.#open !== undefined) {
      // Entered without the previous state's exit: it ends here.
      this.#caught = closeVisit(this.#open, at) ?? this.#caught;
      this.#open = undefined;
    }
    if (this.#caught !== undefined) {
      this.#caught.next = name;
      this.#caught = undefined;
    }
    if (type === 'Choice') {
      return;
    }
    if (type === 'Wait') {
      this.#wait = { name, enteredAt: at, exited: false };
      return;
    }

    const row = enterRow(this.#rows, name, type, at, this.#wait);
    this.#wait = undefined;
    if (type === 'Fail' || type === 'Succeed') {
      row.outcome = type === 'Fail' ? 'failed' : 'ok';
      row.endedAt = at;
    } else {
      this.#open = { row, enteredAt: at };
    }
  }

  #exited(name: string | undefined, at: Date): void {
    if (this.#open !== undefined && this.#open.row.state === name) {
      this.#caught = closeVisit(this.#open, at);
      this.#open = undefined;
    } else if (this.#wait !== undefined && this.#wait.name === name) {
      this.#wait.exited = true;
    }
  }

  /** An attempt starts; after a failure in the same visit, it is a retry. */
  #scheduled(): void {
    const open = this.#open;
    if (open === undefined) {
      return;
    }
    open.row.attempts += 1;
    if (open.failure !== undefined) {
      open.row.retried.push(open.failure.error ?? 'error');
      open.failure = undefined;
    }
  }

  #ended(status: HistoryEnd['status'], event: HistoryEvent, at: Date): void {
    const failure = errorOf(event);
    this.#end = { status, at, ...failure };
    const open = this.#open;
    if (open !== undefined) {
      // The execution ended inside this state: nothing caught it.
      open.row.outcome = status === 'FAILED' ? 'failed' : 'stopped';
      open.row.error = open.failure ?? failure;
      open.row.endedAt = at;
      this.#open = undefined;
    }
  }

  #current(): CurrentStep | undefined {
    if (this.#open !== undefined) {
      return {
        state: this.#open.row.state,
        since: this.#open.enteredAt,
        waiting: false,
      };
    }
    const wait = this.#wait;
    if (wait === undefined || wait.exited) {
      return undefined;
    }
    const last = this.#rows.at(-1);
    return {
      state: wait.name,
      since: wait.enteredAt,
      waiting: true,
      leadsTo:
        last?.kind === 'state' && last.waitedIn === wait.name
          ? last.state
          : undefined,
    };
  }
}

/** Merges a state entered again into its row (a loop), or opens a row. */
function enterRow(
  rows: ProgressRow[],
  name: string,
  type: string,
  at: Date,
  wait: PendingWait | undefined,
): StateRow {
  const last = rows.at(-1);
  if (last?.kind === 'state' && last.state === name) {
    last.visits += 1;
    last.outcome = 'running';
    last.endedAt = undefined;
    last.waitedIn ??= wait?.name;
    return last;
  }
  const row: StateRow = {
    kind: 'state',
    state: name,
    type,
    visits: 1,
    attempts: 0,
    retried: [],
    observed: [],
    waitedIn: wait?.name,
    startedAt: wait?.enteredAt ?? at,
    outcome: 'running',
  };
  rows.push(row);
  return row;
}

/** Ends a visit; returns the row when its error was caught. */
function closeVisit(open: OpenVisit, at: Date): StateRow | undefined {
  open.row.endedAt = at;
  if (open.failure === undefined) {
    open.row.outcome = 'ok';
    return undefined;
  }
  open.row.outcome = 'caught';
  open.row.error = open.failure;
  return open.row;
}

/** The error and cause in whichever `*EventDetails` the event carries. */
function errorOf(event: HistoryEvent): StepError {
  for (const [key, value] of Object.entries(event)) {
    if (key.endsWith('EventDetails') && typeof value === 'object' && value) {
      const { error, cause } = value as { error?: string; cause?: string };
      if (error !== undefined || cause !== undefined) {
        return { error, cause };
      }
    }
  }
  return {};
}

function outputOf(event: HistoryEvent): string | undefined {
  return (
    event.lambdaFunctionSucceededEventDetails?.output ??
    event.taskSucceededEventDetails?.output ??
    event.activitySucceededEventDetails?.output
  );
}

/**
 * What a check saw, from its result: a build's `status`, a waiting loop's
 * `poll.observed`, else `state` (`DONE`). Other results say nothing.
 */
export function observedIn(output: string | undefined): string | undefined {
  if (output === undefined) {
    return undefined;
  }
  let result: unknown;
  try {
    result = JSON.parse(output);
  } catch {
    return undefined;
  }
  if (typeof result !== 'object' || result === null) {
    return undefined;
  }
  const { status, state, poll } = result as {
    status?: unknown;
    state?: unknown;
    poll?: { observed?: unknown };
  };
  if (typeof status === 'string') {
    return status;
  }
  if (state === 'WAITING' && typeof poll?.observed === 'string') {
    return poll.observed;
  }
  return typeof state === 'string' ? state : undefined;
}
