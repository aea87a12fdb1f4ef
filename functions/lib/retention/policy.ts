import { z } from 'zod';
import { intText, readConfig } from '../config.ts';
import { RetentionPolicyError } from './errors.ts';

/** What retention keeps and how much one run may delete. */
export interface RetentionPolicy {
  /** Published values kept besides the current one, per parameter. */
  keepPublished: number;
  /** Newest validated images kept per profile. */
  keepValidatedPerProfile: number;
  /** Nothing younger than this is deleted (a run may still be using it). */
  graceHours: number;
  /** At most this many images and orphan snapshots deleted per run. */
  maxDeletes: number;
  /** Builder leftovers younger than this are left alone. */
  leftoverAgeHours: number;
  /** Retries of a snapshot deletion while EC2 still reports it in use. */
  inUseRetries: number;
}

export const DEFAULT_POLICY: RetentionPolicy = Object.freeze({
  keepPublished: 3,
  keepValidatedPerProfile: 3,
  graceHours: 24,
  maxDeletes: 25,
  leftoverAgeHours: 6,
  inUseRetries: 5,
});

const count = z.number().int().min(0);

/** Rejects unknown keys, so a misspelt setting fails instead of vanishing. */
export const RetentionPolicySchema = z.strictObject({
  keepPublished: count.max(100),
  keepValidatedPerProfile: count.max(1000),
  graceHours: z.number().min(0),
  maxDeletes: count,
  leftoverAgeHours: z.number().min(0),
  inUseRetries: count.max(20),
});

/** The default policy with overrides, checked field by field. */
export function retentionPolicy(
  overrides: Partial<RetentionPolicy> = {},
): RetentionPolicy {
  const defined = Object.fromEntries(
    Object.entries(overrides).filter(([, value]) => value !== undefined),
  );
  const result = RetentionPolicySchema.safeParse({
    ...DEFAULT_POLICY,
    ...defined,
  });
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || 'policy'}: ${issue.message}`,
    );
    throw new RetentionPolicyError(
      `invalid retention policy: ${problems.join('; ')}`,
      { data: { fields: result.error.issues.map((i) => i.path.join('.')) } },
    );
  }
  return result.data;
}

/** Unset or blank: a blank variable must not read as 0 (no grace window). */
function optional<S extends z.ZodType>(schema: S) {
  return z.preprocess(
    (value) =>
      typeof value === 'string' && value.trim() === '' ? undefined : value,
    schema.optional(),
  );
}

const PolicyEnv = z.object({
  RETENTION_KEEP_PUBLISHED: optional(intText.min(0).max(100)),
  RETENTION_KEEP_VALIDATED: optional(intText.min(0).max(1000)),
  RETENTION_GRACE_HOURS: optional(z.coerce.number().min(0)),
  RETENTION_MAX_DELETES: optional(intText.min(0)),
  RETENTION_LEFTOVER_AGE_HOURS: optional(z.coerce.number().min(0)),
  RETENTION_IN_USE_RETRIES: optional(intText.min(0).max(20)),
});

/**
 * The policy from the environment (the CleanupOrphans Task and the CLI read
 * the same variables); each is optional and overrides the default, and a
 * malformed one fails with its name.
 */
export function policyFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): RetentionPolicy {
  const config = readConfig(PolicyEnv, env);
  return retentionPolicy({
    keepPublished: config.RETENTION_KEEP_PUBLISHED,
    keepValidatedPerProfile: config.RETENTION_KEEP_VALIDATED,
    graceHours: config.RETENTION_GRACE_HOURS,
    maxDeletes: config.RETENTION_MAX_DELETES,
    leftoverAgeHours: config.RETENTION_LEFTOVER_AGE_HOURS,
    inUseRetries: config.RETENTION_IN_USE_RETRIES,
  });
}
