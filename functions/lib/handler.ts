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
 * its schema, and every error logged with its cause chain before it goes
 * back to the state machine unchanged (its name is what `Catch` matches).
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
    .use({
      onError: async (request) => {
        logger.error('task failed', request.error as Error);
      },
    });
  return handler as unknown as TaskHandler<O>;
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
