import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { InvalidInputError } from './errors.ts';
import { appendCorrelation, type CorrelationKeys, logger } from './logger.ts';

/** A Task handler as Lambda (and local mode) calls it. */
export type TaskHandler<O> = (event: unknown, context: Context) => Promise<O>;

/**
 * Parses a Task's event with its schema. Schemas are strict, so a field
 * the state machine should not send fails here, named, instead of being
 * silently ignored.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  event: unknown,
): z.infer<S> {
  const result = schema.safeParse(event);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.join('.') || '(event)';
      return `${path}: ${issue.message}`;
    });
    throw new InvalidInputError(`invalid event: ${problems.join('; ')}`, {
      data: { fields: result.error.issues.map((i) => i.path.join('.')) },
    });
  }
  return result.data;
}

/**
 * Wires one core function as a Lambda handler: the Powertools logger with
 * the Lambda context and the run's correlation keys, the event parsed by
 * its schema, one INFO line when the Task finishes (its name, duration and
 * a summary of its result), and every error logged with its cause chain
 * and duration before it goes back to the state machine unchanged (its
 * name is what `Catch` matches).
 */
export function taskHandler<S extends z.ZodType, O>(
  schema: S,
  run: (input: z.infer<S>) => Promise<O>,
): TaskHandler<O> {
  const handler = middy(async (event: unknown): Promise<O> => {
    const input = parseInput(schema, event);
    appendCorrelation(correlationOf(input));
    return run(input);
  })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(taskTiming());
  return handler as unknown as TaskHandler<O>;
}

/** Where each invocation keeps its start time (`performance.now()`). */
const STARTED = Symbol('sbc-ami task started');

/**
 * Logs the end of each Task. Registered after `injectLambdaContext`, so
 * its `after` and `onError` run first, while the correlation keys are
 * still appended.
 */
function taskTiming(): middy.MiddlewareObj<unknown, unknown, Error, Context> {
  const durationOf = (internal: Record<PropertyKey, unknown>) => {
    const started = internal[STARTED];
    return typeof started === 'number'
      ? Math.round(performance.now() - started)
      : undefined;
  };
  return {
    before: async (request) => {
      (request.internal as Record<PropertyKey, unknown>)[STARTED] =
        performance.now();
    },
    after: async (request) => {
      // Ids the Task made (the run id of Prepare, the image id of
      // ResolveImage) belong to its line too.
      appendCorrelation(correlationOf(request.response));
      logger.info('task finished', {
        task: request.context.functionName,
        durationMs: durationOf(request.internal),
        result: summarizeResult(request.response),
      });
    },
    onError: async (request) => {
      logger.error('task failed', {
        task: request.context.functionName,
        durationMs: durationOf(request.internal),
        error: request.error as Error,
      });
    },
  };
}

/** Strings longer than this are cut in a result summary. */
const SUMMARY_TEXT_LIMIT = 120;
/** Fields kept per object of a result summary. */
const SUMMARY_FIELD_LIMIT = 16;

/**
 * A Task result cut down for a log line: the scalar fields (ids, states,
 * flags, counts; long strings cut) of its top level and of the objects
 * right below it. Lists become their length and deeper objects are left
 * out, so a smoke-test report or a cleanup plan never lands in the log
 * whole.
 */
export function summarizeResult(result: unknown, depth = 0): unknown {
  if (result === null || typeof result !== 'object') {
    return typeof result === 'string' && result.length > SUMMARY_TEXT_LIMIT
      ? `${result.slice(0, SUMMARY_TEXT_LIMIT)}...`
      : result;
  }
  if (Array.isArray(result)) {
    return { count: result.length };
  }
  const summary: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(result)) {
    if (Object.keys(summary).length >= SUMMARY_FIELD_LIMIT) {
      break;
    }
    if (Array.isArray(value)) {
      summary[`${key}Count`] = value.length;
    } else if (value !== null && typeof value === 'object') {
      if (depth === 0) {
        summary[key] = summarizeResult(value, depth + 1);
      }
    } else if (value !== undefined) {
      summary[key] = summarizeResult(value, depth + 1);
    }
  }
  return summary;
}

function correlationOf(input: unknown): CorrelationKeys {
  if (typeof input !== 'object' || input === null) {
    return {};
  }
  const fields = input as Record<string, unknown>;
  const text = (value: unknown) =>
    typeof value === 'string' ? value : undefined;
  return {
    runId: text(fields.runId),
    execution: text(fields.execution),
    buildId: text(fields.buildId),
    amiId: text(fields.imageId),
  };
}
