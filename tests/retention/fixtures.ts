import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  ListBuildsForProjectCommand,
} from '@aws-sdk/client-codebuild';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
  type Tag,
} from '@aws-sdk/client-ec2';
import {
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_PROFILE,
  TAG_RUN_ID,
  TAG_VALIDATED,
} from '../../functions/lib/constants.ts';
import {
  type LocalImageStore,
  SNAPSHOT_FILE,
} from '../../functions/lib/local/image-store.ts';
import type { Tags } from '../../functions/lib/ports.ts';
import {
  awsCleanupDeps,
  type CleanupDeps,
  DEFAULT_POLICY,
  type Inventory,
  type InventoryImage,
  type RetentionPolicy,
} from '../../functions/lib/retention/index.ts';

/** The fixed "now" of every retention test. */
export const NOW = new Date('2025-06-01T12:00:00.000Z');

export function hoursAgo(hours: number): string {
  return new Date(NOW.getTime() - hours * 3_600_000).toISOString();
}

/** Old enough for every threshold of the test policy. */
export const MONTH_AGO = hoursAgo(24 * 30);

/** The default policy, spelt out so a test reads its own numbers. */
export const POLICY: RetentionPolicy = {
  ...DEFAULT_POLICY,
  keepPublished: 2,
  keepValidatedPerProfile: 2,
  graceHours: 24,
  maxDeletes: 100,
  leftoverAgeHours: 6,
  inUseRetries: 3,
};

export interface ImageSpec {
  createdAt?: string;
  state?: string;
  profile?: string;
  validated?: boolean;
  runId?: string;
  snapshots?: string[];
  tags?: Tags;
}

/** An image of the pipeline as the planner sees it. */
export function image(imageId: string, spec: ImageSpec = {}): InventoryImage {
  const tags: Tags = {
    [TAG_MANAGED_BY]: MANAGED_BY_VALUE,
    [TAG_PROFILE]: spec.profile ?? 'edge',
    ...(spec.validated ? { [TAG_VALIDATED]: 'true' } : {}),
    ...(spec.runId ? { [TAG_RUN_ID]: spec.runId } : {}),
    ...spec.tags,
  };
  return {
    imageId,
    name: `sbc-${imageId}`,
    state: spec.state ?? 'available',
    createdAt: spec.createdAt ?? MONTH_AGO,
    architecture: 'x86_64',
    ownerId: '111122223333',
    public: false,
    tags,
    blockDevices: (spec.snapshots ?? [`snap-${imageId.slice(4)}`]).map(
      (snapshotId, index) => ({
        deviceName: `/dev/xvd${String.fromCharCode(97 + index)}`,
        snapshotId,
      }),
    ),
  };
}

/** An inventory with nothing in it but these images. */
export function inventoryOf(
  images: InventoryImage[],
  more: Partial<Inventory> = {},
): Inventory {
  return { images, published: [], ...more };
}

/** The same image as EC2's DescribeImages returns it. */
export function ec2Image(
  imageId: string,
  spec: ImageSpec & { ephemeral?: boolean; managed?: boolean } = {},
): Image {
  const record = image(imageId, spec);
  const tags: Tag[] = Object.entries(record.tags)
    .filter(([key]) => spec.managed !== false || key !== TAG_MANAGED_BY)
    .map(([Key, Value]) => ({ Key, Value }));
  return {
    ImageId: imageId,
    Name: record.name,
    State: record.state as Image['State'],
    CreationDate: record.createdAt,
    Architecture: 'x86_64',
    OwnerId: record.ownerId,
    Public: false,
    Tags: tags,
    BlockDeviceMappings: [
      ...record.blockDevices.map((device) => ({
        DeviceName: device.deviceName,
        Ebs: { SnapshotId: device.snapshotId, Encrypted: true },
      })),
      // An instance store volume: a mapping with no snapshot.
      ...(spec.ephemeral
        ? [{ DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' }]
        : []),
    ],
  };
}

/** An AWS service error as the SDK throws it (the name is the code). */
export function awsError(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/**
 * A paged listing: the token is the next offset. `empty` inserts that many
 * empty pages (with a token) before the items, as EC2 does when it filters
 * after paging.
 */
export function pages<T>(
  items: readonly T[],
  size: number,
  empty = 0,
): (token: string | undefined) => { items: T[]; next?: string } {
  return (token) => {
    const position = token === undefined ? 0 : Number(token.slice(1));
    if (position < empty) {
      return { items: [], next: `p${position + 1}` };
    }
    const start = (position - empty) * size;
    const end = start + size;
    return {
      items: items.slice(start, end),
      next: end < items.length ? `p${position + 1}` : undefined,
    };
  };
}

export interface AwsMocks {
  ec2: AwsClientStub<EC2Client>;
  autoScaling: AwsClientStub<AutoScalingClient>;
  ssm: AwsClientStub<SSMClient>;
  codeBuild: AwsClientStub<CodeBuildClient>;
  restore(): void;
}

/**
 * Mocks of the four clients with an empty account: every listing answers
 * one empty page. Tests add what they need with `.on(...)`.
 */
export function mockAws(): AwsMocks {
  const ec2 = mockClient(EC2Client);
  const autoScaling = mockClient(AutoScalingClient);
  const ssm = mockClient(SSMClient);
  const codeBuild = mockClient(CodeBuildClient);
  ec2.on(DescribeImagesCommand).resolves({ Images: [] });
  ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] });
  ec2
    .on(DescribeLaunchTemplateVersionsCommand)
    .resolves({ LaunchTemplateVersions: [] });
  ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  ec2.on(DescribeKeyPairsCommand).resolves({ KeyPairs: [] });
  ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
  autoScaling
    .on(DescribeLaunchConfigurationsCommand)
    .resolves({ LaunchConfigurations: [] });
  autoScaling
    .on(DescribeAutoScalingGroupsCommand)
    .resolves({ AutoScalingGroups: [] });
  ssm.on(GetParametersByPathCommand).resolves({ Parameters: [] });
  ssm.on(GetParameterHistoryCommand).resolves({ Parameters: [] });
  codeBuild.on(ListBuildsForProjectCommand).resolves({ ids: [] });
  codeBuild.on(BatchGetBuildsCommand).resolves({ builds: [] });
  return {
    ec2,
    autoScaling,
    ssm,
    codeBuild,
    restore() {
      ec2.restore();
      autoScaling.restore();
      ssm.restore();
      codeBuild.restore();
    },
  };
}

/** The AWS cleanup on mocked clients, with retry delays of 1 ms. */
export function awsDeps(): CleanupDeps {
  const region = { region: 'eu-west-1' };
  return awsCleanupDeps({
    parameterPrefix: '/sbc-ami',
    projectName: 'sbc-ami-build',
    clients: {
      ec2: new EC2Client(region),
      autoScaling: new AutoScalingClient(region),
      ssm: new SSMClient(region),
      codeBuild: new CodeBuildClient(region),
    },
    deletion: { retryDelayMs: 1, maxRetryDelayMs: 1 },
    securityGroupRetries: 3,
    leftoverRetryDelayMs: 1,
  });
}

/** EC2 commands in the order they were sent, with their inputs. */
export function sentTo(mock: {
  calls(): { args: readonly unknown[] }[];
}): { command: string; input: Record<string, unknown> }[] {
  return mock.calls().map((call) => {
    const command = call.args[0] as unknown as {
      constructor: { name: string };
      input: Record<string, unknown>;
    };
    return {
      command: command.constructor.name.replace(/Command$/, ''),
      input: command.input,
    };
  });
}

/** EC2 and Auto Scaling commands that change something. */
export const MUTATING = [
  'DeregisterImage',
  'DeleteSnapshot',
  'TerminateInstances',
  'DeleteKeyPair',
  'DeleteSecurityGroup',
  'CreateTags',
  'DeleteTags',
];

/** Writes an image and its snapshot folders as local mode does. */
export async function putLocalImage(
  store: LocalImageStore,
  imageId: string,
  spec: ImageSpec = {},
): Promise<void> {
  const record = image(imageId, spec);
  await store.putImage(record);
  for (const device of record.blockDevices) {
    if (device.snapshotId !== undefined) {
      await putLocalSnapshot(store, device.snapshotId, record.createdAt);
    }
  }
}

export async function putLocalSnapshot(
  store: LocalImageStore,
  snapshotId: string,
  createdAt: string,
): Promise<void> {
  await store.putSnapshot({
    snapshotId,
    state: 'completed',
    encrypted: false,
    tags: {},
  });
  await writeFile(join(store.snapshotDir(snapshotId), SNAPSHOT_FILE), 'rootfs');
  const time = new Date(createdAt);
  await utimes(store.snapshotDir(snapshotId), time, time);
}
