import { z } from 'zod';
import { describeError, isThrottling, ThrottledError } from '../errors.ts';
import type {
  BuildRunner,
  ImageStore,
  LeftoverSweeper,
  Publisher,
} from '../ports.ts';
import { discardImage } from '../retention/deletion.ts';

const RunFields = {
  runId: z.string().min(1),
  execution: z.string().min(1),
};

export const DiscardInputSchema = z.strictObject({
  ...RunFields,
  /** The profile whose published value must not be discarded. */
  profileName: z.string().min(1),
  /** Null when the run never got as far as an image. */
  imageId: z.string().min(1).nullable(),
  /** The snapshots the image check recorded for it. */
  snapshotIds: z.array(z.string().min(1)),
});

export const SweepInputSchema = z.strictObject({
  ...RunFields,
  /** Null when no build was started. */
  buildId: z.string().min(1).nullable(),
});

export type DiscardInput = z.infer<typeof DiscardInputSchema>;
export type SweepInput = z.infer<typeof SweepInputSchema>;

/** What a failure-path step removed and what a person must remove by hand. */
export interface RollbackReport {
  readonly removed: string[];
  readonly leftBehind: string[];
}

/**
 * A publisher that can also name the launch template versions using an
 * image (the AWS one: its configured templates).
 */
export interface TemplateReferences {
  launchTemplateVersionsUsing(imageId: string): Promise<string[]>;
}

export interface DiscardDeps {
  readonly images: ImageStore;
  readonly publisher: Publisher & Partial<TemplateReferences>;
}

/**
 * Failure path: deregisters the run's image, then deletes exactly the
 * snapshots recorded for it. An image still in use is left, with the
 * reason: the profile's current published value, or named by a launch
 * template version (a publish that failed half way and could not roll
 * back, or a Publish killed by its timeout). Never throws for what it
 * cannot delete; a throttled check is thrown as `ThrottledError`, so the
 * state machine retries.
 */
export async function discardRunImage(
  input: DiscardInput,
  deps: DiscardDeps,
): Promise<RollbackReport> {
  if (input.imageId === null) {
    return { removed: [], leftBehind: [] };
  }
  const imageId = input.imageId;

  const uses = await usesOf(imageId, input.profileName, deps.publisher);
  if (uses.length > 0) {
    const snapshots =
      input.snapshotIds.length === 0
        ? ''
        : ` and its snapshots ${input.snapshotIds.join(', ')}`;
    return {
      removed: [],
      leftBehind: [
        `${imageId}${snapshots} kept, still in use: ${uses.join('; ')}; ` +
          'point these at another image, then deregister it by hand',
      ],
    };
  }

  const result = await discardImage(deps.images, imageId, {
    snapshotIds: input.snapshotIds,
    runId: input.runId,
  });
  return {
    removed: [...result.removed, ...result.alreadyGone],
    leftBehind: [
      ...result.leftBehind,
      ...result.errors.map((error) => `${error.id}: ${error.reason}`),
    ],
  };
}

/**
 * Where the image is still published or referenced. A check that fails
 * counts as a use: an image is never deregistered on a guess.
 */
async function usesOf(
  imageId: string,
  profileName: string,
  publisher: DiscardDeps['publisher'],
): Promise<string[]> {
  const uses: string[] = [];
  try {
    const [current] = await publisher.history(profileName);
    if (current === imageId) {
      uses.push(`the published value of profile ${profileName}`);
    }
  } catch (error) {
    rethrowThrottling(error);
    uses.push(
      `cannot tell whether it is the published value of ${profileName} ` +
        `(${describeError(error)})`,
    );
  }

  if (publisher.launchTemplateVersionsUsing !== undefined) {
    try {
      uses.push(...(await publisher.launchTemplateVersionsUsing(imageId)));
    } catch (error) {
      rethrowThrottling(error);
      uses.push(
        'cannot tell whether a launch template names it ' +
          `(${describeError(error)})`,
      );
    }
  }
  return uses;
}

function rethrowThrottling(error: unknown): void {
  if (error instanceof ThrottledError) {
    throw error;
  }
  if (isThrottling(error)) {
    throw new ThrottledError('discard check was throttled', { cause: error });
  }
}

/**
 * Failure path: stops the build if it is still running (a wait loop past its
 * deadline leaves it so), then removes what the builder left for the run:
 * instance, key pair, security group. Never throws for what it cannot remove.
 */
export async function sweepRunLeftovers(
  input: SweepInput,
  deps: { readonly builds: BuildRunner; readonly sweeper: LeftoverSweeper },
): Promise<RollbackReport> {
  const leftBehind: string[] = [];
  if (input.buildId !== null) {
    try {
      await deps.builds.stop(input.buildId);
    } catch (error) {
      if (isThrottling(error)) {
        throw error;
      }
      leftBehind.push(`build ${input.buildId}: ${describeError(error)}`);
    }
  }

  const swept = await deps.sweeper.sweep(input.runId);
  return {
    removed: swept.removed,
    leftBehind: [...leftBehind, ...swept.leftBehind],
  };
}
