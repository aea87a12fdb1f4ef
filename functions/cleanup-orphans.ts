import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  CleanupInputSchema,
  type CleanupStepDeps,
  cleanupOrphans,
} from './lib/pipeline/cleanup.ts';
import { awsCleanupDepsFromEnv, policyFromEnv } from './lib/retention/index.ts';

/** CleanupOrphans: the retention policy, after each successful publish. */
export const cleanupOrphansHandler = (deps: () => CleanupStepDeps) =>
  taskHandler(CleanupInputSchema, (input) => cleanupOrphans(input, deps()));

export const handler = cleanupOrphansHandler(
  lazy(() => ({
    cleanup: awsCleanupDepsFromEnv(),
    policy: policyFromEnv(),
    now: () => new Date(),
  })),
);
