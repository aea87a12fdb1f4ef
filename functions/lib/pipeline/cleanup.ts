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
