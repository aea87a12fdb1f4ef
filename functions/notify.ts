import { notifierFromEnv } from './lib/aws/notifier.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import { NotifyInputSchema, notifyOutcome } from './lib/pipeline/notify.ts';
import type { Notifier } from './lib/ports.ts';

/** Notify: the run's summary to the topic, on success and on failure. */
export const notifyHandler = (deps: () => { notifier: Notifier }) =>
  taskHandler(NotifyInputSchema, (input) => notifyOutcome(input, deps()));

export const handler = notifyHandler(
  lazy(() => ({ notifier: notifierFromEnv() })),
);
