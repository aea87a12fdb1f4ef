import { z } from 'zod';
import {
  type CleanupDeps,
  type CleanupSummary,
  type RetentionPolicy,
  runCleanup,
  summarizeCleanup,
} from '../retention/index.ts';

export const CleanupInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
});

export type CleanupInput = z.infer<typeof CleanupInputSchema>;

/** `$.cleanup` in the state: counts and the first failures, never a list. */
export const CleanupSummarySchema = z.strictObject({
  dryRun: z.boolean(),
  candidates: z.number().int(),
  kept: z.number().int(),
  toDelete: z.number().int(),
  deleted: z.number().int(),
  failed: z.number().int(),
  failures: z.array(z.strictObject({ id: z.string(), reason: z.string() })),
  leftBehind: z.array(z.string()),
});

export interface CleanupStepDeps {
  readonly cleanup: CleanupDeps;
  readonly policy: RetentionPolicy;
  readonly now: () => Date;
}

/**
 * Applies the retention policy after a successful publish: images no
 * longer needed and the builder's stale leftovers go, each with a reason.
 * The state keeps a summary only, so it does not grow with the account.
 */
export async function cleanupOrphans(
  _input: CleanupInput,
  deps: CleanupStepDeps,
): Promise<CleanupSummary> {
  const report = await runCleanup(deps.cleanup, {
    dryRun: false,
    policy: deps.policy,
    now: deps.now(),
  });
  return summarizeCleanup(report);
}
