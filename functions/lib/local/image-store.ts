import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageContents } from '../attest/index.ts';
import { SnapshotInUseError } from '../errors.ts';
import { globToRegExp } from '../glob.ts';
import type {
  DeleteOutcome,
  ImageRecord,
  ImageStore,
  SnapshotRecord,
  Tags,
} from '../ports.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';
import type { LocalPaths } from './paths.ts';

/** Owner id of local images, in place of an AWS account id. */
export const LOCAL_OWNER_ID = 'local';

/** A snapshot folder holds its record and the packed root filesystem. */
export const SNAPSHOT_FILE = 'rootfs.tar';

/**
 * Images and snapshots as folders of JSON records under the local home,
 * with the same semantics as EC2: deregistering an image leaves its
 * snapshots, which are deleted one by one.
 */
export class LocalImageStore implements ImageStore {
  readonly paths: LocalPaths;

  constructor(paths: LocalPaths) {
    this.paths = paths;
  }

  imageFile(imageId: string): string {
    return join(this.paths.images, imageId, 'image.json');
  }

  snapshotDir(snapshotId: string): string {
    return join(this.paths.snapshots, snapshotId);
  }

  async describeImage(imageId: string): Promise<ImageRecord | undefined> {
    return readJsonFile<ImageRecord>(this.imageFile(imageId));
  }

  async listImages(): Promise<ImageRecord[]> {
    const ids = await listFolders(this.paths.images);
    const records = await Promise.all(ids.map((id) => this.describeImage(id)));
    return records.filter((record) => record !== undefined);
  }

  async putImage(record: ImageRecord): Promise<void> {
    await writeJsonFile(this.imageFile(record.imageId), record);
  }

  async putSnapshot(record: SnapshotRecord): Promise<void> {
    await writeJsonFile(
      join(this.snapshotDir(record.snapshotId), 'snapshot.json'),
      record,
    );
  }

  async describeSnapshots(
    snapshotIds: readonly string[],
  ): Promise<SnapshotRecord[]> {
    const records = await Promise.all(
      snapshotIds.map((id) =>
        readJsonFile<SnapshotRecord>(
          join(this.snapshotDir(id), 'snapshot.json'),
        ),
      ),
    );
    return records.filter((record) => record !== undefined);
  }

  async listSnapshots(): Promise<SnapshotRecord[]> {
    return this.describeSnapshots(await listFolders(this.paths.snapshots));
  }

  async findLatestImage(
    ownerId: string,
    namePattern: string,
  ): Promise<ImageRecord | undefined> {
    const matcher = globToRegExp(namePattern);
    const matching = (await this.listImages()).filter(
      (image) =>
        image.ownerId === ownerId &&
        matcher.test(image.name) &&
        image.state === 'available',
    );
    matching.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return matching[0];
  }

  async tagImage(imageId: string, tags: Tags): Promise<void> {
    const image = await this.describeImage(imageId);
    if (image === undefined) {
      throw new Error(`local image ${imageId} does not exist`);
    }
    await this.putImage({ ...image, tags: { ...image.tags, ...tags } });
  }

  async deregisterImage(imageId: string): Promise<DeleteOutcome> {
    const image = await this.describeImage(imageId);
    if (image === undefined) {
      return 'already-gone';
    }
    await rm(join(this.paths.images, imageId), {
      recursive: true,
      force: true,
    });
    return 'deleted';
  }

  /** The packed root filesystem of each snapshot, by sorted snapshot id. */
  contentFiles(image: ImageRecord): string[] {
    return image.blockDevices
      .map((device) => device.snapshotId)
      .filter((id): id is string => id !== undefined && id !== '')
      .sort()
      .map((id) => join(this.snapshotDir(id), SNAPSHOT_FILE));
  }

  /**
   * Hashes the image's contents now: its snapshot files read one after
   * the other (one file for a local build, whose SHA-256 this then is).
   * The `ContentReader` of local verification and signing.
   */
  async hashContents(image: ImageRecord): Promise<ImageContents> {
    const files = this.contentFiles(image);
    if (files.length === 0) {
      throw new Error(`image ${image.imageId} has no snapshot to hash`);
    }
    const hash = createHash('sha256');
    for (const file of files) {
      for await (const chunk of createReadStream(file)) {
        hash.update(chunk as Buffer);
      }
    }
    return { sha256: hash.digest('hex'), files };
  }

  async deleteSnapshot(snapshotId: string): Promise<DeleteOutcome> {
    const [snapshot] = await this.describeSnapshots([snapshotId]);
    if (snapshot === undefined) {
      return 'already-gone';
    }
    const users = (await this.listImages()).filter((image) =>
      image.blockDevices.some((device) => device.snapshotId === snapshotId),
    );
    if (users.length > 0) {
      throw new SnapshotInUseError(
        `snapshot ${snapshotId} is in use by ${users.map((i) => i.imageId).join(', ')}`,
        { data: { snapshotId } },
      );
    }
    await rm(this.snapshotDir(snapshotId), { recursive: true, force: true });
    return 'deleted';
  }
}

async function listFolders(path: string): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return [];
    }
    throw error;
  }
}
