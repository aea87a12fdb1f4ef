import { z } from 'zod';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import { logger } from './lib/logger.ts';
import {
  handleTrigger,
  type TriggerDeps,
  triggerDepsFromEnv,
} from './lib/trigger/index.ts';

/**
 * Trigger: a new profile version (S3 notification) or a schedule fire
 * starts the pipeline. The core tells the two events apart and validates
 * them, so the handler takes the event as it comes.
 */
export const triggerHandler = (deps: () => TriggerDeps) =>
  taskHandler(z.unknown(), async (event) => {
    const report = await handleTrigger(event, deps());
    logger.info('trigger handled', {
      source: report.source,
      started: report.started.map((run) => run.execution),
      alreadyStarted: report.alreadyStarted.map((run) => run.execution),
      ignored: report.ignored,
    });
    return report;
  });

export const handler = triggerHandler(lazy(() => triggerDepsFromEnv()));
