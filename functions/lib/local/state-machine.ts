import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import {
  ExecutionError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import type { TaskHandler } from '../handler.ts';

/** The state machine definition, as the deployed stack uses it. */
export const DEFINITION_FILE = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'statemachine',
  'pipeline.asl.json',
);

/** `${PrepareFunctionArn}` -> `Prepare`: the function a Task state calls. */
const PLACEHOLDER = /^\$\{(\w+)FunctionArn\}$/;

interface AslState {
  Type: string;
  Resource?: string;
}

type JsonValue = Parameters<StateMachine['run']>[0];

/** The definition file's text, parsed. */
export function loadDefinition(path = DEFINITION_FILE): {
  StartAt: string;
  States: Record<string, AslState>;
} {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Task state name -> the function it calls, from the definition. */
export function taskFunctions(
  definition = loadDefinition(),
): Record<string, string> {
  const tasks: Record<string, string> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') {
      continue;
    }
    const match = PLACEHOLDER.exec(state.Resource ?? '');
    if (match?.[1] === undefined) {
      throw new Error(`state ${name} calls ${state.Resource}, not a function`);
    }
    tasks[name] = match[1];
  }
  return tasks;
}

export interface LocalRunOptions {
  /** Handlers by function name (`Prepare`, `CheckBuild`, ...). */
  readonly handlers: Readonly<Record<string, TaskHandler<unknown>>>;
  readonly input: unknown;
  readonly executionName: string;
  /** How long Wait states really pause, in ms (default: no pause). */
  readonly waitMs?: number;
  /** How long a Retry really pauses, in ms (default: no pause). */
  readonly retryMs?: number;
  /** Each state entered or left, as it happens. */
  readonly onEvent?: (event: LocalEvent) => void;
  /** Called before each Task's handler, with the Task's input. */
  readonly beforeTask?: (fn: string, input: unknown) => void;
  readonly signal?: AbortSignal;
}

export interface LocalEvent {
  readonly type: string;
  readonly state?: string;
  readonly stateType?: string;
  readonly error?: string;
  readonly cause?: unknown;
}

export interface LocalRunResult {
  readonly status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  /** Every event, in order: the execution history. */
  readonly events: LocalEvent[];
  /** Names of the states entered, in order. */
  readonly path: string[];
}

/**
 * Runs the pipeline's definition file on this machine with
 * aws-local-stepfunctions, each Task bound to an in-process handler.
 */
export async function runLocalStateMachine(
  options: LocalRunOptions,
): Promise<LocalRunResult> {
  const raw = readFileSync(DEFINITION_FILE, 'utf8');
  const definition = loadDefinition();
  const functions = taskFunctions(definition);

  const taskResourceLocalHandlers: Record<
    string,
    (input: JsonValue) => Promise<JsonValue>
  > = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [state, fn] of Object.entries(functions)) {
    const handler = options.handlers[fn];
    if (handler === undefined) {
      throw new Error(`no local handler for function ${fn} (state ${state})`);
    }
    taskResourceLocalHandlers[state] = async (input) => {
      options.beforeTask?.(fn, input);
      return toJson(await handler(input, lambdaContext(fn)));
    };
    retryIntervalOverrides[state] = options.retryMs ?? 0;
  }
  const waitTimeOverrides: Record<string, number> = {};
  for (const [state, definitionState] of Object.entries(definition.States)) {
    if (definitionState.Type === 'Wait') {
      waitTimeOverrides[state] = options.waitMs ?? 0;
    }
  }

  const machine = new StateMachine(
    JSON.parse(
      raw.replace(
        /\$\{(\w+)\}/g,
        'arn:aws:lambda:us-east-1:000000000000:function:$1',
      ),
    ) as StateMachineDefinition,
  );
  const execution = machine.run(options.input as never, {
    overrides: {
      taskResourceLocalHandlers,
      waitTimeOverrides,
      retryIntervalOverrides,
    },
    context: {
      Execution: {
        Id: `arn:aws:states:local:000000000000:execution:sbc-ami:${options.executionName}`,
        Name: options.executionName,
        StartTime: new Date().toISOString(),
        Input: options.input,
      },
    } as never,
    noThrowOnAbort: true,
  });
  options.signal?.addEventListener('abort', () => execution.abort(), {
    once: true,
  });

  const events: LocalEvent[] = [];
  const path: string[] = [];
  const recording = (async () => {
    for await (const log of execution.eventLogs) {
      const event: LocalEvent = {
        type: log.type,
        ...('state' in log
          ? { state: log.state.name, stateType: log.state.type }
          : {}),
        ...('Error' in log ? { error: log.Error, cause: log.Cause } : {}),
      };
      if (log.type === 'StateEntered' && event.state !== undefined) {
        path.push(event.state);
      }
      events.push(event);
      options.onEvent?.(event);
    }
  })();

  try {
    const output = await execution.result;
    await recording;
    if (output === null && options.signal?.aborted) {
      return { status: 'ABORTED', events, path };
    }
    return { status: 'SUCCEEDED', output, events, path };
  } catch (error) {
    await recording.catch(() => undefined);
    if (error instanceof ExecutionError) {
      const failed = events.findLast((e) => e.type === 'ExecutionFailed');
      return {
        status: 'FAILED',
        error: failed?.error ?? error.name,
        cause: String(failed?.cause ?? error.message),
        events,
        path,
      };
    }
    throw error;
  }
}

function toJson(value: unknown): never {
  return (
    value === undefined ? null : JSON.parse(JSON.stringify(value))
  ) as never;
}

function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/local/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
