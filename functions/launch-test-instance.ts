import { testHostRunnerFromEnv } from './lib/aws/test-host.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type HostDeps,
  LaunchInputSchema,
  launchTestHost,
} from './lib/pipeline/host.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** LaunchTestInstance: one instance from the new image, IMDSv2 required. */
export const launchTestInstanceHandler = (deps: () => HostDeps) =>
  taskHandler(LaunchInputSchema, (input) => launchTestHost(input, deps()));

export const handler = launchTestInstanceHandler(
  lazy(() => ({
    hosts: testHostRunnerFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
