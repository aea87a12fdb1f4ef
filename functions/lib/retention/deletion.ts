import pRetry from 'p-retry';
import { TAG_RUN_ID } from '../constants.ts';
import { describeError } from '../errors.ts';
import type { DeleteOutcome, ImageStore } from '../ports.ts';
import { recordedSnapshots } from './planner.ts';
import { DEFAULT_POLICY } from './policy.ts';

export interface DeletionOptions {
  /** Retries while EC2 still reports a snapshot in use. */
  readonly inUseRetries?: number;
  /** Delay before the first retry; doubles up to `maxRetryDelayMs`. */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

/** What a deletion did; ids in `leftBehind` are for a person to delete. */
export interface DeletionResult {
  /** Deleted now. */
  readonly removed: string[];
  /** Gone before this call: done as well. */
  readonly alreadyGone: string[];
  readonly leftBehind: string[];
  readonly errors: { id: string; reason: string }[];
}

const DEFAULT_RETRY_DELAY_MS = 2_000;
const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;

/**
 * Deletes a snapshot, retrying a bounded number of times while it is still
 * in use (EC2 takes a moment to release it after a deregistration). Any
 * other error, or the last "in use", is thrown.
 */
export async function deleteSnapshotWhenFree(
  store: ImageStore,
  snapshotId: string,
  options: DeletionOptions = {},
): Promise<DeleteOutcome> {
  return pRetry(() => store.deleteSnapshot(snapshotId), {
    retries: options.inUseRetries ?? DEFAULT_POLICY.inUseRetries,
    minTimeout: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    maxTimeout: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
    shouldRetry: ({ error }) => error.name === 'SnapshotInUseError',
  });
}

/**
 * Deregisters an image, then deletes exactly the given snapshots. Never
 * throws: what could not be removed is in `leftBehind`, with the reason
 * in `errors`. A failed deregistration leaves the snapshots untouched (the
 * image still holds them).
 */
export async function deleteImageAndSnapshots(
  store: ImageStore,
  imageId: string,
  snapshotIds: readonly string[],
  options: DeletionOptions = {},
): Promise<DeletionResult> {
  const result: DeletionResult = {
    removed: [],
    alreadyGone: [],
    leftBehind: [],
    errors: [],
  };

  try {
    record(result, imageId, await store.deregisterImage(imageId));
  } catch (error) {
    result.leftBehind.push(imageId, ...snapshotIds);
    result.errors.push({
      id: imageId,
      reason: `deregister failed: ${describeError(error)}`,
    });
    return result;
  }

  for (const snapshotId of snapshotIds) {
    try {
      const outcome = await deleteSnapshotWhenFree(store, snapshotId, options);
      record(result, snapshotId, outcome);
    } catch (error) {
      result.leftBehind.push(snapshotId);
      result.errors.push({
        id: snapshotId,
        reason: `snapshot of ${imageId} not deleted: ${describeError(error)}`,
      });
    }
  }
  return result;
}

export interface DiscardOptions extends DeletionOptions {
  /** Snapshot ids the run recorded for the image (manifest, image check). */
  readonly snapshotIds?: readonly string[];
  /** The run discarding it: an image tagged with another run is refused. */
  readonly runId?: string;
}

/**
 * The failure path for a run's own image: deregister it, then delete
 * exactly its recorded snapshots (the ids the run recorded plus those the
 * image still names). Never throws; says what is left to delete by hand.
 */
export async function discardImage(
  store: ImageStore,
  imageId: string,
  opts: DiscardOptions = {},
): Promise<DeletionResult> {
  const snapshotIds = new Set(opts.snapshotIds ?? []);
  try {
    const image = await store.describeImage(imageId);
    const owner = image?.tags[TAG_RUN_ID];
    if (
      opts.runId !== undefined &&
      owner !== undefined &&
      owner !== opts.runId
    ) {
      return {
        removed: [],
        alreadyGone: [],
        leftBehind: [],
        errors: [
          {
            id: imageId,
            reason: `refused: tagged with run ${owner}, not ${opts.runId}`,
          },
        ],
      };
    }
    for (const snapshotId of image === undefined
      ? []
      : recordedSnapshots(image)) {
      snapshotIds.add(snapshotId);
    }
  } catch (error) {
    // Without the description the recorded ids are still exact; go on.
    const result = await deleteImageAndSnapshots(
      store,
      imageId,
      [...snapshotIds],
      opts,
    );
    result.errors.push({
      id: imageId,
      reason:
        'could not describe the image, so only recorded snapshots were ' +
        `handled: ${describeError(error)}`,
    });
    return result;
  }
  return deleteImageAndSnapshots(store, imageId, [...snapshotIds], opts);
}

function record(
  result: DeletionResult,
  id: string,
  outcome: DeleteOutcome,
): void {
  if (outcome === 'already-gone') {
    result.alreadyGone.push(id);
  } else {
    result.removed.push(id);
  }
}
