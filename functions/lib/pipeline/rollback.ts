import { z } from 'zod';
import { describeError, isThrottling } from '../errors.ts';
import type { BuildRunner, ImageStore, LeftoverSweeper } from '../ports.ts';
import { discardImage } from '../retention/deletion.ts';

const RunFields = {
  runId: z.string().min(1),
  execution: z.string().min(1),
};

export const DiscardInputSchema = z.strictObject({
  ...RunFields,
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
 * Failure path: deregisters the run's image, then deletes exactly the
 * snapshots recorded for it. Never throws for what it cannot delete.
 */
export async function discardRunImage(
  input: DiscardInput,
  deps: { readonly images: ImageStore },
): Promise<RollbackReport> {
  if (input.imageId === null) {
    return { removed: [], leftBehind: [] };
  }
  const result = await discardImage(deps.images, input.imageId, {
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
