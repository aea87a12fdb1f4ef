import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TAG_PROFILE } from '../constants.ts';
import { LocalImageStore } from '../local/image-store.ts';
import { type LocalPaths, localPaths } from '../local/paths.ts';
import type { Publisher } from '../ports.ts';
import type { CleanupDeps } from './cleanup.ts';
import type { Inventory, InventorySource } from './inventory.ts';

/**
 * The local image store as an inventory. Every image and snapshot in it was
 * made by local mode, so all images are candidates and every snapshot id is
 * one the pipeline recorded. There are no launch templates or instances.
 */
export class LocalInventorySource implements InventorySource {
  readonly store: LocalImageStore;
  readonly publisher?: Pick<Publisher, 'history'>;

  constructor(store: LocalImageStore, publisher?: Pick<Publisher, 'history'>) {
    this.store = store;
    this.publisher = publisher;
  }

  async list(): Promise<Inventory> {
    const images = await this.store.listImages();
    const profiles = [
      ...new Set(images.flatMap((image) => image.tags[TAG_PROFILE] ?? [])),
    ].sort();
    const publisher = this.publisher;
    const published =
      publisher === undefined
        ? []
        : await Promise.all(
            profiles.map(async (profile) => ({
              name: `local registry ${profile}`,
              imageIds: await publisher.history(profile),
            })),
          );
    const snapshots = await Promise.all(
      (await this.store.listSnapshots()).map(async (snapshot) => ({
        snapshotId: snapshot.snapshotId,
        tags: snapshot.tags,
        createdAt: (
          await stat(this.store.snapshotDir(snapshot.snapshotId))
        ).mtime.toISOString(),
      })),
    );
    return {
      images,
      published,
      publishedUnknown: publisher === undefined,
      snapshots,
      recordedSnapshotIds: snapshots.map((snapshot) => snapshot.snapshotId),
    };
  }
}

export interface LocalCleanupOptions {
  readonly paths?: LocalPaths;
  /** The local registry's history; without it every validated image stays. */
  readonly publisher?: Pick<Publisher, 'history'>;
  readonly progress?: (line: string) => void;
}

/**
 * Cleanup of local mode's images. A run is taken as running while its work
 * folder exists: a run removes it when it ends, and one that crashed keeps
 * its images until the folder is cleared.
 */
export function localCleanupDeps(
  options: LocalCleanupOptions = {},
): CleanupDeps {
  const paths = options.paths ?? localPaths();
  const store = new LocalImageStore(paths);
  return {
    inventory: new LocalInventorySource(store, options.publisher),
    store,
    isBuildRunning: async (runId) => existsSync(join(paths.work, runId)),
    // Local deletions free at once: no "in use" delay to wait out.
    deletion: { retryDelayMs: 10, maxRetryDelayMs: 100 },
    progress: options.progress,
  };
}
