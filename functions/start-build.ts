import { codeBuildRunnerFromEnv } from './lib/aws/build-runner.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type BuildDeps,
  StartBuildInputSchema,
  startBuild,
} from './lib/pipeline/build.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** StartBuild: starts the Packer build in CodeBuild. */
export const startBuildHandler = (deps: () => BuildDeps) =>
  taskHandler(StartBuildInputSchema, (input) => startBuild(input, deps()));

export const handler = startBuildHandler(
  lazy(() => ({
    builds: codeBuildRunnerFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
