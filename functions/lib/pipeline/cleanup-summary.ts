import { z } from 'zod';

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
