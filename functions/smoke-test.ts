import { z } from 'zod';
import { lazy, readConfig } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';
import {
  type SmokeDeps,
  SmokeTestInputSchema,
  smokeTest,
} from './lib/pipeline/smoke.ts';
import { runProbe } from './lib/probe/index.ts';

/** SmokeTest: SIP over UDP, TCP and TLS, and the TLS checks. */
export const smokeTestHandler = (deps: () => SmokeDeps) =>
  taskHandler(SmokeTestInputSchema, (input) => smokeTest(input, deps()));

export const handler = smokeTestHandler(
  lazy(() => ({
    probe: runProbe,
    settings: settingsFromEnv(),
    caFile: readConfig(z.object({ SMOKE_CA_FILE: z.string().optional() }))
      .SMOKE_CA_FILE,
  })),
);
