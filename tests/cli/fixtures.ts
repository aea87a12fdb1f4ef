import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type SFNClientResolvedConfig,
  SFNServiceException,
} from '@aws-sdk/client-sfn';
import type { AwsStub } from 'aws-sdk-client-mock';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const STATE_MACHINE_NAME = 'sbc-ami-pipeline-prod';
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${STATE_MACHINE_NAME}`;
export const BUCKET = 'sbc-ami-config-prod';
export const PROFILE_KEY = 'profiles/genesys-euw1.json';
export const VERSION_ID = '3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY';

export function executionArnOf(name: string): string {
  return `arn:aws:states:${REGION}:${ACCOUNT}:execution:${STATE_MACHINE_NAME}:${name}`;
}

/** A service exception as the SDK throws it (name, fault, metadata). */
export function sfnError(name: string, message = name): SFNServiceException {
  return new SFNServiceException({
    name,
    message,
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  });
}

/** Output lines captured from a command. */
export class Captured {
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly context = {
    out: (text: string) => this.out.push(...text.split('\n')),
    err: (text: string) => this.err.push(...text.split('\n')),
  };
}

/** A Describe result for an execution of the test state machine. */
export function described(
  name: string,
  fields: Partial<DescribeExecutionCommandOutput> = {},
): DescribeExecutionCommandOutput {
  return {
    $metadata: {},
    executionArn: executionArnOf(name),
    stateMachineArn: STATE_MACHINE_ARN,
    name,
    status: 'RUNNING',
    startDate: T0,
    input: JSON.stringify({
      trigger: { source: 's3' },
      profile: { bucket: BUCKET, key: PROFILE_KEY, versionId: VERSION_ID },
    }),
    redriveCount: 0,
    ...fields,
  };
}

/** When every fixture execution starts. */
export const T0 = new Date('2025-06-01T12:00:00.000Z');

/** One Lambda attempt of a Task state: its result, or its error. */
export type Attempt =
  | { readonly ok: unknown; readonly ms?: number }
  | {
      readonly error: string;
      readonly message: string;
      readonly ms?: number;
      /** Seconds the Retry policy waits before the next attempt. */
      readonly retryAfter?: number;
    };

const FUNCTION_PREFIX = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:sbc-ami-prod-`;

/**
 * Writes an execution history the way Step Functions records it: numbered
 * events linked by `previousEventId`, a Lambda-backed Task's attempts as
 * Scheduled/Started/Succeeded|Failed, a caught error as the Task's exit
 * into the Catch target, and the execution's end.
 */
export class HistoryBuilder {
  readonly events: HistoryEvent[] = [];
  #time: number;

  constructor(start: Date = T0) {
    this.#time = start.getTime();
  }

  started(input: unknown): this {
    this.#push('ExecutionStarted', {
      executionStartedEventDetails: {
        input: JSON.stringify(input),
        roleArn: `arn:aws:iam::${ACCOUNT}:role/sbc-ami-prod-states`,
      },
    });
    return this;
  }

  /** A Task state whose attempts end with a result, or an error caught. */
  task(name: string, attempts: readonly Attempt[]): this {
    this.taskAttempts(name, attempts);
    const last = attempts.at(-1);
    const output =
      last !== undefined && 'ok' in last
        ? { ok: true }
        : { error: { Error: last?.error } };
    this.#push('TaskStateExited', {
      stateExitedEventDetails: { name, output: JSON.stringify(output) },
    });
    return this;
  }

  /** A Task state's entry and attempts, without its exit. */
  taskAttempts(name: string, attempts: readonly Attempt[]): this {
    this.#push('TaskStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    for (const attempt of attempts) {
      this.#push('LambdaFunctionScheduled', {
        lambdaFunctionScheduledEventDetails: {
          resource: `${FUNCTION_PREFIX}${name}`,
          input: '{}',
          timeoutInSeconds: 60,
        },
      });
      this.#push('LambdaFunctionStarted', {}, 40);
      const ms = attempt.ms ?? 800;
      if ('ok' in attempt) {
        this.#push(
          'LambdaFunctionSucceeded',
          {
            lambdaFunctionSucceededEventDetails: {
              output: JSON.stringify(attempt.ok),
            },
          },
          ms,
        );
      } else {
        this.#push(
          'LambdaFunctionFailed',
          {
            lambdaFunctionFailedEventDetails: {
              error: attempt.error,
              cause: JSON.stringify({
                errorType: attempt.error,
                errorMessage: attempt.message,
                trace: [`${attempt.error}: ${attempt.message}`, '    at f'],
              }),
            },
          },
          ms,
        );
        this.#time += (attempt.retryAfter ?? 0) * 1000;
      }
    }
    return this;
  }

  wait(name: string, seconds: number): this {
    this.#push('WaitStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    this.#push(
      'WaitStateExited',
      { stateExitedEventDetails: { name, output: '{}' } },
      seconds * 1000,
    );
    return this;
  }

  /** A Wait state entered and not yet left. */
  waiting(name: string): this {
    this.#push('WaitStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    return this;
  }

  choice(name: string): this {
    this.#push('ChoiceStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    this.#push('ChoiceStateExited', {
      stateExitedEventDetails: { name, output: '{}' },
    });
    return this;
  }

  /** `Wait -> Check -> Choice` once per observed value. */
  loop(
    wait: string,
    check: string,
    choice: string,
    waitSeconds: number,
    results: readonly unknown[],
  ): this {
    for (const result of results) {
      this.wait(wait, waitSeconds);
      this.task(check, [{ ok: result }]);
      this.choice(choice);
    }
    return this;
  }

  fail(name: string, error: string, cause: string): this {
    this.#push('FailStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    this.#push('ExecutionFailed', {
      executionFailedEventDetails: { error, cause },
    });
    return this;
  }

  succeed(name: string): this {
    this.#push('SucceedStateEntered', {
      stateEnteredEventDetails: { name, input: '{}' },
    });
    this.#push('SucceedStateExited', {
      stateExitedEventDetails: { name, output: '{}' },
    });
    this.#push('ExecutionSucceeded', {
      executionSucceededEventDetails: { output: '{}' },
    });
    return this;
  }

  /** The execution failed inside the open state: nothing caught it. */
  failedUncaught(error: string, cause: string): this {
    this.#push('ExecutionFailed', {
      executionFailedEventDetails: { error, cause },
    });
    return this;
  }

  timedOut(): this {
    this.#push('ExecutionTimedOut', {
      executionTimedOutEventDetails: {
        error: 'States.Timeout',
        cause: 'The execution timed out after 21600 seconds',
      },
    });
    return this;
  }

  redriven(count: number): this {
    this.#push('ExecutionRedriven', {
      executionRedrivenEventDetails: { redriveCount: count },
    });
    return this;
  }

  /** Moves the clock on, as between two events far apart. */
  after(seconds: number): this {
    this.#time += seconds * 1000;
    return this;
  }

  get now(): Date {
    return new Date(this.#time);
  }

  #push(type: string, details: Partial<HistoryEvent>, advanceMs = 20): void {
    this.#time += advanceMs;
    const id = this.events.length + 1;
    this.events.push({
      id,
      ...(id > 1 ? { previousEventId: id - 1 } : {}),
      timestamp: new Date(this.#time),
      type: type as HistoryEvent['type'],
      ...details,
    });
  }
}

/** What CheckBuild returns while the build runs, and once it is done. */
export function buildCheck(status: string): unknown {
  return {
    buildId: 'sbc-ami-prod:5b1f0e0c',
    attempt: 1,
    state: status === 'IN_PROGRESS' ? 'WAITING' : 'DONE',
    status,
    phase: status === 'IN_PROGRESS' ? 'BUILD' : 'COMPLETED',
    artifactsLocation: null,
    poll: { attempt: 1, since: T0.toISOString(), waitSeconds: 300 },
  };
}

/** What CheckImage and CheckTestInstance return. */
export function pollCheck(observed: string | 'DONE'): unknown {
  return observed === 'DONE'
    ? {
        state: 'DONE',
        poll: { attempt: 2, since: T0.toISOString(), waitSeconds: 30 },
      }
    : {
        state: 'WAITING',
        poll: {
          attempt: 1,
          since: T0.toISOString(),
          waitSeconds: 30,
          observed,
        },
      };
}

export const SMOKE_CAUSE =
  'tls/5061: certificate expired 3 days ago (notAfter 2025-05-29)';

const S3_INPUT = {
  trigger: { source: 's3' },
  profile: { bucket: BUCKET, key: PROFILE_KEY, versionId: VERSION_ID },
};

/**
 * A whole execution that fails at the smoke test: a build loop of seven
 * checks, a throttled ResolveImage that its Retry gets past, the image and
 * instance loops, the smoke test's error caught into the failure path, and
 * the Fail state.
 */
export function smokeFailureHistory(): HistoryBuilder {
  return new HistoryBuilder()
    .started(S3_INPUT)
    .task('Prepare', [{ ok: { runId: 'sbc-0123' }, ms: 1200 }])
    .task('StartBuild', [{ ok: buildCheck('IN_PROGRESS'), ms: 600 }])
    .loop('WaitForBuild', 'CheckBuild', 'BuildReady', 300, [
      ...Array.from({ length: 6 }, () => buildCheck('IN_PROGRESS')),
      buildCheck('SUCCEEDED'),
    ])
    .task('ResolveImage', [
      {
        error: 'Lambda.TooManyRequestsException',
        message: 'Rate Exceeded.',
        retryAfter: 2,
      },
      { ok: { imageId: 'ami-0abc', state: 'WAITING' } },
    ])
    .loop('WaitForImage', 'CheckImage', 'ImageReady', 30, [
      pollCheck('pending'),
      pollCheck('pending'),
      pollCheck('DONE'),
    ])
    .task('LaunchTestInstance', [{ ok: { instanceId: 'i-0abc' } }])
    .loop('WaitForTestInstance', 'CheckTestInstance', 'TestInstanceReady', 15, [
      pollCheck('pending'),
      pollCheck('DONE'),
    ])
    .task('SmokeTest', [
      { error: 'SmokeTestFailedError', message: SMOKE_CAUSE, ms: 14_000 },
    ])
    .task('TerminateAfterFailure', [{ ok: { terminated: true } }])
    .task('DiscardImage', [{ ok: { deregistered: true } }])
    .task('SweepBuildLeftovers', [{ ok: { swept: [] } }])
    .task('NotifyFailure', [{ ok: { reason: `smoke test: ${SMOKE_CAUSE}` } }])
    .fail('Failed', 'SmokeTestFailedError', `smoke test: ${SMOKE_CAUSE}`);
}

/**
 * Serves a history through GetExecutionHistory the way the service pages
 * it: `pageSize` events at most, a `nextToken` while more remain, newest
 * first with `reverseOrder`. `events` is read on every call, so a test can
 * let the history grow between polls. Resolves to the tokens received, as
 * they were when each call was made (the SDK's paginator reuses its input).
 */
export function serveHistory(
  sfn: AwsStub<ServiceInputTypes, ServiceOutputTypes, SFNClientResolvedConfig>,
  events: () => readonly HistoryEvent[],
  pageSize: number,
): (string | undefined)[] {
  const tokens: (string | undefined)[] = [];
  sfn.on(GetExecutionHistoryCommand).callsFake((input) => {
    tokens.push(input.nextToken);
    const ordered = input.reverseOrder ? [...events()].reverse() : events();
    const offset =
      input.nextToken === undefined ? 0 : Number(input.nextToken.slice(5));
    const size = Math.min(pageSize, input.maxResults ?? 1000);
    const page = ordered.slice(offset, offset + size);
    const next = offset + size;
    return {
      events: page,
      ...(next < ordered.length ? { nextToken: `page:${next}` } : {}),
    };
  });
  return tokens;
}

interface AslState {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { Next: string }[];
}

/** The pipeline's ASL, as deployed. */
export function loadAsl(): {
  StartAt: string;
  States: Record<string, AslState>;
} {
  const file = join(
    import.meta.dirname,
    '..',
    '..',
    'statemachine',
    'pipeline.asl.json',
  );
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** The states each state of the ASL may go to. */
export function transitions(): Map<string, Set<string>> {
  const asl = loadAsl();
  const edges = new Map<string, Set<string>>();
  for (const [name, state] of Object.entries(asl.States)) {
    const next = new Set<string>();
    for (const target of [
      state.Next,
      state.Default,
      ...(state.Choices ?? []).map((choice) => choice.Next),
      ...(state.Catch ?? []).map((c) => c.Next),
    ]) {
      if (target !== undefined) {
        next.add(target);
      }
    }
    edges.set(name, next);
  }
  return edges;
}
