import { codeBuildRunnerFromEnv } from './lib/aws/build-runner.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type BuildDeps,
  CheckBuildInputSchema,
  checkBuild,
} from './lib/pipeline/build.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** CheckBuild: one look at the build, mapped to wait, go on or fail. */
export const checkBuildHandler = (deps: () => BuildDeps) =>
  taskHandler(CheckBuildInputSchema, (input) => checkBuild(input, deps()));

export const handler = checkBuildHandler(
  lazy(() => ({
    builds: codeBuildRunnerFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
