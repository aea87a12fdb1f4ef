import { testHostRunnerFromEnv } from './lib/aws/test-host.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  CheckHostInputSchema,
  checkTestHost,
  type HostDeps,
} from './lib/pipeline/host.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** CheckTestInstance: one look at the test instance's state and checks. */
export const checkTestInstanceHandler = (deps: () => HostDeps) =>
  taskHandler(CheckHostInputSchema, (input) => checkTestHost(input, deps()));

export const handler = checkTestInstanceHandler(
  lazy(() => ({
    hosts: testHostRunnerFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
