import { EC2Client } from '@aws-sdk/client-ec2';
import { codeBuildRunnerFromEnv } from './lib/aws/build-runner.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  SweepInputSchema,
  sweepRunLeftovers,
} from './lib/pipeline/rollback.ts';
import type { BuildRunner, LeftoverSweeper } from './lib/ports.ts';
import { Ec2LeftoverSweeper } from './lib/retention/aws-leftovers.ts';

/** SweepBuildLeftovers (failure path): stop the build, remove its leftovers. */
export const sweepBuildLeftoversHandler = (
  deps: () => { builds: BuildRunner; sweeper: LeftoverSweeper },
) => taskHandler(SweepInputSchema, (input) => sweepRunLeftovers(input, deps()));

export const handler = sweepBuildLeftoversHandler(
  lazy(() => ({
    builds: codeBuildRunnerFromEnv(),
    sweeper: new Ec2LeftoverSweeper({ ec2: new EC2Client({}) }),
  })),
);
