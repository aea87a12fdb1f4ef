import { testHostRunnerFromEnv } from './lib/aws/test-host.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type HostDeps,
  TerminateInputSchema,
  terminateTestHost,
} from './lib/pipeline/host.ts';

/** TerminateTestInstance: on success and on failure alike. */
export const terminateTestInstanceHandler = (
  deps: () => Pick<HostDeps, 'hosts'>,
) =>
  taskHandler(TerminateInputSchema, (input) =>
    terminateTestHost(input, deps()),
  );

export const handler = terminateTestInstanceHandler(
  lazy(() => ({ hosts: testHostRunnerFromEnv() })),
);
