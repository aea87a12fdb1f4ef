import { z } from 'zod';
import { ConfigurationError } from './errors.ts';

/**
 * Reads configuration from the environment once, through a schema whose keys
 * are the variable names. A missing or malformed variable fails loudly with
 * its name, before any work starts.
 */
export function readConfig<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new ConfigurationError(
      `invalid configuration: ${problems.join('; ')}`,
      { data: { variables: result.error.issues.map((i) => i.path.join('.')) } },
    );
  }
  return result.data;
}

/** A comma-separated list variable, empty entries dropped. */
export const csv = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

/** An integer variable given as text. */
export const intText = z.coerce.number().int();

/** Memoizes a factory: configuration and clients are built on first use. */
export function lazy<T>(factory: () => T): () => T {
  let value: T | undefined;
  let built = false;
  return () => {
    if (!built) {
      value = factory();
      built = true;
    }
    return value as T;
  };
}

/** A boolean variable given as `true` or `false`. */
export const boolText = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true');
