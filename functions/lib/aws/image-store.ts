import {
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { SnapshotInUseError, throttleAware } from '../errors.ts';
import type {
  DeleteOutcome,
  ImageRecord,
  ImageStore,
  SnapshotRecord,
  Tags,
} from '../ports.ts';
import { tagList, tagMap } from './tags.ts';

/** EC2 error codes that mean the image or snapshot no longer exists. */
const GONE = new Set([
  'InvalidAMIID.NotFound',
  'InvalidAMIID.Unavailable',
  'InvalidSnapshot.NotFound',
]);

/** Images and snapshots in EC2 (this account and the client's region). */
export class Ec2ImageStore implements ImageStore {
  readonly ec2: EC2Client;

  constructor(ec2: EC2Client) {
    this.ec2 = ec2;
  }

  async describeImage(imageId: string): Promise<ImageRecord | undefined> {
    try {
      const output = await throttleAware('DescribeImages', () =>
        this.ec2.send(
          new DescribeImagesCommand({
            ImageIds: [imageId],
            IncludeDeprecated: true,
            IncludeDisabled: true,
          }),
        ),
      );
      const image = output.Images?.[0];
      return image === undefined ? undefined : toImageRecord(image);
    } catch (error) {
      if (isGone(error)) {
        return undefined;
      }
      throw error;
    }
  }

  async describeSnapshots(
    snapshotIds: readonly string[],
  ): Promise<SnapshotRecord[]> {
    if (snapshotIds.length === 0) {
      return [];
    }
    const output = await throttleAware('DescribeSnapshots', () =>
      this.ec2.send(
        new DescribeSnapshotsCommand({
          // A filter, not SnapshotIds: an id that is gone is left out
          // instead of failing the whole call.
          OwnerIds: ['self'],
          Filters: [{ Name: 'snapshot-id', Values: [...snapshotIds] }],
        }),
      ),
    );
    return (output.Snapshots ?? []).map((snapshot) => ({
      snapshotId: snapshot.SnapshotId ?? '',
      state: snapshot.State ?? 'unknown',
      stateMessage: snapshot.StateMessage,
      encrypted: snapshot.Encrypted === true,
      tags: tagMap(snapshot.Tags),
    }));
  }

  async findLatestImage(
    ownerId: string,
    namePattern: string,
  ): Promise<ImageRecord | undefined> {
    const output = await throttleAware('DescribeImages', () =>
      this.ec2.send(
        new DescribeImagesCommand({
          Owners: [ownerId],
          Filters: [
            { Name: 'name', Values: [namePattern] },
            { Name: 'state', Values: ['available'] },
          ],
        }),
      ),
    );
    const newest = [...(output.Images ?? [])].sort((a, b) =>
      (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''),
    )[0];
    return newest === undefined ? undefined : toImageRecord(newest);
  }

  async tagImage(imageId: string, tags: Tags): Promise<void> {
    await throttleAware('CreateTags', () =>
      this.ec2.send(
        new CreateTagsCommand({ Resources: [imageId], Tags: tagList(tags) }),
      ),
    );
  }

  async deregisterImage(imageId: string): Promise<DeleteOutcome> {
    try {
      await throttleAware('DeregisterImage', () =>
        this.ec2.send(new DeregisterImageCommand({ ImageId: imageId })),
      );
      return 'deleted';
    } catch (error) {
      if (isGone(error)) {
        return 'already-gone';
      }
      throw error;
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<DeleteOutcome> {
    try {
      await throttleAware('DeleteSnapshot', () =>
        this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      );
      return 'deleted';
    } catch (error) {
      if (isGone(error)) {
        return 'already-gone';
      }
      if (errorName(error) === 'InvalidSnapshot.InUse') {
        throw new SnapshotInUseError(`snapshot ${snapshotId} is in use`, {
          cause: error,
          data: { snapshotId },
        });
      }
      throw error;
    }
  }
}

/** The port's view of an EC2 image. */
export function toImageRecord(image: Image): ImageRecord {
  return {
    imageId: image.ImageId ?? '',
    name: image.Name ?? '',
    state: image.State ?? 'unknown',
    stateReason: image.StateReason?.Message,
    createdAt: image.CreationDate ?? '',
    architecture: image.Architecture ?? '',
    ownerId: image.OwnerId ?? '',
    public: image.Public === true,
    imdsSupport: image.ImdsSupport,
    deprecatedAt: image.DeprecationTime,
    tags: tagMap(image.Tags),
    blockDevices: (image.BlockDeviceMappings ?? []).map((mapping) => ({
      deviceName: mapping.DeviceName ?? '',
      snapshotId: mapping.Ebs?.SnapshotId,
      encrypted: mapping.Ebs?.Encrypted,
      volumeType: mapping.Ebs?.VolumeType,
    })),
  };
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function isGone(error: unknown): boolean {
  const name = errorName(error);
  return name !== undefined && GONE.has(name);
}

/** The image store of the deployed stack (region from the environment). */
export function imageStoreFromEnv(): Ec2ImageStore {
  return new Ec2ImageStore(new EC2Client({}));
}
