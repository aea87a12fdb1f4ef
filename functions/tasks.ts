import { checkBuildHandler } from './check-build.ts';
import { checkImageHandler } from './check-image.ts';
import { checkTestInstanceHandler } from './check-test-instance.ts';
import { cleanupOrphansHandler } from './cleanup-orphans.ts';
import { discardImageHandler } from './discard-image.ts';
import { launchTestInstanceHandler } from './launch-test-instance.ts';
import type { TaskHandler } from './lib/handler.ts';
import type { BuildDeps } from './lib/pipeline/build.ts';
import type { CleanupStepDeps } from './lib/pipeline/cleanup.ts';
import type { HostDeps } from './lib/pipeline/host.ts';
import type { ImageDeps } from './lib/pipeline/image.ts';
import type { PrepareDeps } from './lib/pipeline/prepare.ts';
import type { PublishDeps } from './lib/pipeline/publish.ts';
import type { SignDeps } from './lib/pipeline/sign.ts';
import type { SmokeDeps } from './lib/pipeline/smoke.ts';
import type { LeftoverSweeper, Notifier } from './lib/ports.ts';
import { notifyHandler } from './notify.ts';
import { prepareHandler } from './prepare.ts';
import { publishHandler } from './publish.ts';
import { resolveImageHandler } from './resolve-image.ts';
import { signHandler } from './sign.ts';
import { smokeTestHandler } from './smoke-test.ts';
import { startBuildHandler } from './start-build.ts';
import { sweepBuildLeftoversHandler } from './sweep-build-leftovers.ts';
import { terminateTestInstanceHandler } from './terminate-test-instance.ts';

/** Every port and setting the Task handlers use, for one environment. */
export interface PipelineDeps
  extends PrepareDeps,
    BuildDeps,
    ImageDeps,
    HostDeps,
    SmokeDeps,
    SignDeps,
    PublishDeps,
    CleanupStepDeps {
  readonly notifier: Notifier;
  readonly sweeper: LeftoverSweeper;
}

/**
 * The Task handlers by the function name the definition substitutes
 * (`${PrepareFunctionArn}` -> `Prepare`), bound to one set of ports: the
 * same handlers Lambda runs, with local or test adapters.
 */
export function taskHandlers(
  deps: () => PipelineDeps,
): Record<string, TaskHandler<unknown>> {
  return {
    Prepare: prepareHandler(deps),
    StartBuild: startBuildHandler(deps),
    CheckBuild: checkBuildHandler(deps),
    ResolveImage: resolveImageHandler(deps),
    CheckImage: checkImageHandler(deps),
    LaunchTestInstance: launchTestInstanceHandler(deps),
    CheckTestInstance: checkTestInstanceHandler(deps),
    SmokeTest: smokeTestHandler(deps),
    Sign: signHandler(deps),
    Publish: publishHandler(deps),
    TerminateTestInstance: terminateTestInstanceHandler(deps),
    CleanupOrphans: cleanupOrphansHandler(deps),
    Notify: notifyHandler(deps),
    DiscardImage: discardImageHandler(deps),
    SweepBuildLeftovers: sweepBuildLeftoversHandler(deps),
  };
}
