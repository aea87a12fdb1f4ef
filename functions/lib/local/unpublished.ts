/**
 * The images a local run made that never reached the registry, found by
 * the run id tag the build puts on each image and snapshot, and their
 * removal: what a failed, interrupted or killed run must not leave. An
 * image in any profile's registry history, current or past, is never
 * touched: a launch or a rollback may still point at it.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { attestationFileName } from '../attest/index.ts';
import { TAG_RUN_ID, TAG_VALIDATED } from '../constants.ts';
import { describeError } from '../errors.ts';
import type { SweepReport } from '../ports.ts';
import { discardImage } from '../retention/index.ts';
import type { LocalImageStore } from './image-store.ts';
import { LOCAL_OWNER_ID } from './image-store.ts';
import type { Registry } from './publisher.ts';

/** What the registry is read through: the local publisher. */
export interface RegistryReader {
  read(): Promise<Registry>;
}

export interface DiscardUnpublishedOptions {
  /**
   * Keeps images tagged validated as well. A sweep of a dead run cannot
   * tell how far its publish went, and leaves those to the retention
   * policy; the run itself knows it did not publish.
   */
  readonly keepValidated?: boolean;
}

/** Every image id in the registry, current or in a history, any profile. */
export async function publishedImageIds(
  registry: RegistryReader,
): Promise<Set<string>> {
  const { profiles } = await registry.read();
  return new Set(
    Object.values(profiles).flatMap((profile) => [
      profile.current,
      ...profile.history.map((entry) => entry.imageId),
    ]),
  );
}

/**
 * Discards the run's images that are not in the registry (deregistered,
 * their snapshots and attestation deleted), then the run's snapshots no
 * image uses (a build stopped between writing the snapshot and the
 * image). Never throws: what it cannot remove is in `leftBehind`.
 */
export async function discardUnpublished(
  images: LocalImageStore,
  registry: RegistryReader,
  runId: string,
  options: DiscardUnpublishedOptions = {},
): Promise<SweepReport> {
  const removed: string[] = [];
  const leftBehind: string[] = [];
  const mine = (await images.listImages()).filter(
    (image) =>
      image.ownerId === LOCAL_OWNER_ID && image.tags[TAG_RUN_ID] === runId,
  );

  let published: Set<string>;
  try {
    published = await publishedImageIds(registry);
  } catch (error) {
    // Without the registry nothing can be shown to be unpublished.
    for (const image of mine) {
      leftBehind.push(
        `image ${image.imageId} of run ${runId}: kept, the registry cannot ` +
          `be read (${describeError(error)})`,
      );
    }
    return { removed, leftBehind };
  }

  for (const image of mine) {
    if (published.has(image.imageId)) {
      continue;
    }
    if (options.keepValidated && image.tags[TAG_VALIDATED] === 'true') {
      continue;
    }
    const result = await discardImage(images, image.imageId, { runId });
    removed.push(
      ...result.removed.map((id) => `${kind(id)} ${id} (never published)`),
    );
    const reasons = new Map(result.errors.map((e) => [e.id, e.reason]));
    for (const id of result.leftBehind) {
      leftBehind.push(`${kind(id)} ${id}: ${reasons.get(id) ?? 'not removed'}`);
    }
    if (result.leftBehind.length === 0) {
      await removeAttestation(images, image.imageId, removed, leftBehind);
    }
  }

  const stillUsed = new Set(
    (await images.listImages()).flatMap((image) =>
      image.blockDevices.map((device) => device.snapshotId),
    ),
  );
  for (const snapshot of await images.listSnapshots()) {
    const id = snapshot.snapshotId;
    if (snapshot.tags[TAG_RUN_ID] !== runId || stillUsed.has(id)) {
      continue;
    }
    try {
      if ((await images.deleteSnapshot(id)) === 'deleted') {
        removed.push(`snapshot ${id} (no image uses it)`);
      }
    } catch (error) {
      leftBehind.push(`snapshot ${id}: ${describeError(error)}`);
    }
  }
  return { removed, leftBehind };
}

async function removeAttestation(
  images: LocalImageStore,
  imageId: string,
  removed: string[],
  leftBehind: string[],
): Promise<void> {
  const file = join(images.paths.attestations, attestationFileName(imageId));
  try {
    await rm(file);
    removed.push(`attestation ${file}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      leftBehind.push(`attestation ${file}: ${describeError(error)}`);
    }
  }
}

function kind(id: string): string {
  return id.startsWith('snap-') ? 'snapshot' : 'image';
}
