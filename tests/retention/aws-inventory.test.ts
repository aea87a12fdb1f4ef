import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import {
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
} from '../../functions/lib/constants.ts';
import {
  ApiCallCounter,
  AwsInventorySource,
  collectPages,
  PaginationLoopError,
} from '../../functions/lib/retention/index.ts';
import {
  type AwsMocks,
  awsError,
  ec2Image,
  mockAws,
  pages,
  sentTo,
} from './fixtures.ts';

const REGION = { region: 'eu-west-1' };

function source(counter = new ApiCallCounter()): AwsInventorySource {
  return new AwsInventorySource({
    ec2: new EC2Client(REGION),
    autoScaling: new AutoScalingClient(REGION),
    ssm: new SSMClient(REGION),
    parameterPrefix: '/sbc-ami',
    counter,
  });
}

/** Serves DescribeImages from a paged listing. */
function serveImages(
  mocks: AwsMocks,
  listing: ReturnType<typeof pages<Image>>,
) {
  mocks.ec2.on(DescribeImagesCommand).callsFake((input) => {
    const page = listing((input as { NextToken?: string }).NextToken);
    return { Images: page.items, NextToken: page.next };
  });
}

describe('collectPages', () => {
  it('follows empty pages that carry a next token', async () => {
    // Prepare
    const listing = pages(['a', 'b', 'c'], 2, 3);

    // Act
    const items = await collectPages('list', async (token) => listing(token));

    // Assess
    expect(items).toEqual(['a', 'b', 'c']);
  });

  it('aborts with PaginationLoopError when a token comes back', async () => {
    // Prepare: t1 -> t2 -> t1 would loop forever.
    const tokens: Record<string, string> = { start: 't1', t1: 't2', t2: 't1' };
    let calls = 0;

    // Act
    const listing = collectPages('DescribeImages', async (token) => {
      calls += 1;
      return { items: [calls], next: tokens[token ?? 'start'] };
    });

    // Assess
    await expect(listing).rejects.toThrow(PaginationLoopError);
    await expect(listing).rejects.toThrow(
      /DescribeImages returned page token t1 twice/,
    );
    expect(calls).toBe(3);
  });
});

describe('AwsInventorySource', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
  });
  afterEach(() => {
    mocks.restore();
  });

  describe('listImages', () => {
    it('asks for own images in every state, deprecated and disabled included', async () => {
      // Act
      await source().listImages();

      // Assess
      const [call] = mocks.ec2.commandCalls(DescribeImagesCommand);
      expect(call?.args[0].input).toEqual({
        Owners: ['self'],
        IncludeDeprecated: true,
        IncludeDisabled: true,
        MaxResults: 1000,
        NextToken: undefined,
      });
    });

    it('follows empty pages with a next token, one call per page', async () => {
      // Prepare: two empty pages, then 5 images 2 per page.
      const images = [1, 2, 3, 4, 5].map((n) => ec2Image(`ami-${n}`));
      serveImages(mocks, pages(images, 2, 2));
      const counter = new ApiCallCounter();

      // Act
      const listed = await source(counter).listImages();

      // Assess
      expect(listed.images.map((i) => i.imageId)).toEqual([
        'ami-1',
        'ami-2',
        'ami-3',
        'ami-4',
        'ami-5',
      ]);
      const tokens = mocks.ec2
        .commandCalls(DescribeImagesCommand)
        .map((call) => call.args[0].input.NextToken);
      expect(tokens).toEqual([undefined, 'p1', 'p2', 'p3', 'p4']);
      expect(counter.snapshot()).toEqual({ DescribeImages: 5 });
    });

    it('aborts the listing with an error when a token repeats', async () => {
      // Prepare
      mocks.ec2
        .on(DescribeImagesCommand)
        .resolves({ Images: [ec2Image('ami-1')], NextToken: 'same' });

      // Act
      const listing = source().listImages();

      // Assess
      await expect(listing).rejects.toThrow(PaginationLoopError);
      expect(mocks.ec2.commandCalls(DescribeImagesCommand)).toHaveLength(2);
    });

    it('takes only images with the pipeline tag as candidates', async () => {
      // Prepare
      serveImages(
        mocks,
        pages(
          [
            ec2Image('ami-ours'),
            ec2Image('ami-theirs', { managed: false, snapshots: ['snap-t'] }),
          ],
          10,
        ),
      );

      // Act
      const listed = await source().listImages();

      // Assess
      expect(listed.images.map((i) => i.imageId)).toEqual(['ami-ours']);
      expect(listed.images[0]?.tags[TAG_MANAGED_BY]).toBe(MANAGED_BY_VALUE);
      expect(listed.otherImages).toEqual([
        { imageId: 'ami-theirs', snapshotIds: ['snap-t'] },
      ]);
    });

    it('reads snapshots from EBS mappings only, not instance store ones', async () => {
      // Prepare
      serveImages(
        mocks,
        pages(
          [ec2Image('ami-1', { snapshots: ['snap-root'], ephemeral: true })],
          10,
        ),
      );

      // Act
      const listed = await source().listImages();

      // Assess
      expect(listed.images[0]?.blockDevices).toEqual([
        {
          deviceName: '/dev/xvda',
          snapshotId: 'snap-root',
          encrypted: true,
          volumeType: undefined,
        },
        {
          deviceName: '/dev/sdb',
          snapshotId: undefined,
          encrypted: undefined,
          volumeType: undefined,
        },
      ]);
    });

    it('marks an image with deregistration protection', async () => {
      serveImages(
        mocks,
        pages(
          [
            {
              ...ec2Image('ami-1'),
              DeregistrationProtection: 'enabled-with-cooldown',
            },
          ],
          10,
        ),
      );

      const listed = await source().listImages();

      expect(listed.images[0]?.deregistrationProtection).toBe(true);
    });
  });

  describe('listLaunchTemplateVersions', () => {
    it('lists every version of every template, with SSM aliases resolved', async () => {
      // Prepare
      mocks.ec2.on(DescribeLaunchTemplatesCommand).resolves({
        LaunchTemplates: [
          { LaunchTemplateId: 'lt-1', LaunchTemplateName: 'edge' },
          { LaunchTemplateId: 'lt-2', LaunchTemplateName: 'core' },
        ],
      });
      mocks.ec2
        .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: 'lt-1' })
        .resolves({
          LaunchTemplateVersions: [
            {
              LaunchTemplateId: 'lt-1',
              VersionNumber: 1,
              DefaultVersion: false,
              LaunchTemplateData: { ImageId: 'ami-1' },
            },
          ],
          NextToken: 'v2',
        })
        .on(DescribeLaunchTemplateVersionsCommand, {
          LaunchTemplateId: 'lt-1',
          NextToken: 'v2',
        })
        .resolves({
          LaunchTemplateVersions: [
            {
              LaunchTemplateId: 'lt-1',
              VersionNumber: 2,
              DefaultVersion: true,
              LaunchTemplateData: { ImageId: 'ami-2' },
            },
          ],
        })
        .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: 'lt-2' })
        .resolves({
          LaunchTemplateVersions: [
            {
              LaunchTemplateId: 'lt-2',
              VersionNumber: 7,
              LaunchTemplateData: {},
            },
          ],
        });

      // Act
      const versions = await source().listLaunchTemplateVersions();

      // Assess
      expect(versions).toEqual([
        {
          launchTemplateId: 'lt-1',
          launchTemplateName: 'edge',
          version: 1,
          isDefault: false,
          imageId: 'ami-1',
        },
        {
          launchTemplateId: 'lt-1',
          launchTemplateName: 'edge',
          version: 2,
          isDefault: true,
          imageId: 'ami-2',
        },
        {
          launchTemplateId: 'lt-2',
          launchTemplateName: 'core',
          version: 7,
          isDefault: false,
          imageId: undefined,
        },
      ]);
      const inputs = mocks.ec2
        .commandCalls(DescribeLaunchTemplateVersionsCommand)
        .map((call) => call.args[0].input);
      expect(inputs).toHaveLength(3);
      for (const input of inputs) {
        expect(input.ResolveAlias).toBe(true);
        expect(input.Versions).toBeUndefined();
      }
    });
  });

  describe('listAutoScalingGroups', () => {
    it('maps launch templates, mixed-instances policies and overrides', async () => {
      // Prepare
      mocks.autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          {
            AutoScalingGroupName: 'asg-1',
            MinSize: 0,
            MaxSize: 1,
            DesiredCapacity: 0,
            DefaultCooldown: 300,
            AvailabilityZones: [],
            HealthCheckType: 'EC2',
            CreatedTime: new Date(),
            MixedInstancesPolicy: {
              LaunchTemplate: {
                LaunchTemplateSpecification: {
                  LaunchTemplateId: 'lt-1',
                  Version: '$Latest',
                },
                Overrides: [
                  { InstanceType: 'c6i.large', ImageId: 'ami-o' },
                  {
                    LaunchTemplateSpecification: {
                      LaunchTemplateName: 'arm',
                      Version: '3',
                    },
                  },
                ],
              },
            },
          },
        ],
      });

      // Act
      const groups = await source().listAutoScalingGroups();

      // Assess
      expect(groups).toEqual([
        {
          name: 'asg-1',
          launchConfigurationName: undefined,
          launchTemplate: undefined,
          mixedInstancesTemplate: {
            launchTemplateId: 'lt-1',
            launchTemplateName: undefined,
            version: '$Latest',
          },
          overrides: [
            { template: undefined, imageId: 'ami-o' },
            {
              template: {
                launchTemplateId: undefined,
                launchTemplateName: 'arm',
                version: '3',
              },
              imageId: undefined,
            },
          ],
        },
      ]);
      const [call] = mocks.autoScaling.commandCalls(
        DescribeAutoScalingGroupsCommand,
      );
      expect(call?.args[0].input).toMatchObject({
        MaxRecords: 100,
        IncludeManagedResources: true,
      });
    });
  });

  describe('listInstances', () => {
    it('asks for instances in every state but terminated', async () => {
      // Prepare
      mocks.ec2.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-1',
                ImageId: 'ami-1',
                State: { Name: 'stopped' },
              },
            ],
          },
        ],
      });

      // Act
      const instances = await source().listInstances();

      // Assess
      expect(instances).toEqual([
        { instanceId: 'i-1', imageId: 'ami-1', state: 'stopped' },
      ]);
      const [call] = mocks.ec2.commandCalls(DescribeInstancesCommand);
      expect(call?.args[0].input.Filters).toEqual([
        {
          Name: 'instance-state-name',
          Values: [
            'pending',
            'running',
            'shutting-down',
            'stopping',
            'stopped',
          ],
        },
      ]);
      expect(call?.args[0].input.IncludeManagedResources).toBe(true);
    });
  });

  describe('listPublished', () => {
    it('reads the history of every parameter under the prefix, newest first', async () => {
      // Prepare
      mocks.ssm
        .on(GetParametersByPathCommand)
        .resolvesOnce({
          Parameters: [{ Name: '/sbc-ami/edge/image-id' }],
          NextToken: 'n1',
        })
        .resolvesOnce({ Parameters: [], NextToken: 'n2' })
        .resolvesOnce({ Parameters: [{ Name: '/sbc-ami/core/image-id' }] });
      mocks.ssm
        .on(GetParameterHistoryCommand, { Name: '/sbc-ami/edge/image-id' })
        .resolves({
          Parameters: [
            { Version: 1, Value: 'ami-1' },
            { Version: 3, Value: 'ami-3' },
            { Version: 2, Value: 'ami-2' },
          ],
        })
        .on(GetParameterHistoryCommand, { Name: '/sbc-ami/core/image-id' })
        .rejects(awsError('ParameterNotFound'));

      // Act
      const published = await source().listPublished();

      // Assess
      expect(published).toEqual([
        { name: '/sbc-ami/core/image-id', imageIds: [] },
        {
          name: '/sbc-ami/edge/image-id',
          imageIds: ['ami-3', 'ami-2', 'ami-1'],
        },
      ]);
      const [byPath] = mocks.ssm.commandCalls(GetParametersByPathCommand);
      expect(byPath?.args[0].input).toMatchObject({
        Path: '/sbc-ami',
        Recursive: true,
      });
    });

    it('fails the listing on any other SSM error', async () => {
      mocks.ssm
        .on(GetParametersByPathCommand)
        .rejects(awsError('AccessDeniedException'));

      await expect(source().listPublished()).rejects.toThrow(
        'AccessDeniedException',
      );
    });
  });

  describe('listSnapshots', () => {
    it('lists own snapshots with the pipeline tag, page by page', async () => {
      // Prepare
      mocks.ec2
        .on(DescribeSnapshotsCommand)
        .resolvesOnce({ Snapshots: [], NextToken: 's1' })
        .resolvesOnce({
          Snapshots: [
            {
              SnapshotId: 'snap-1',
              StartTime: new Date('2025-01-01T00:00:00Z'),
              Tags: [{ Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE }],
            },
          ],
        });

      // Act
      const snapshots = await source().listSnapshots();

      // Assess
      expect(snapshots).toEqual([
        {
          snapshotId: 'snap-1',
          createdAt: '2025-01-01T00:00:00.000Z',
          tags: { [TAG_MANAGED_BY]: MANAGED_BY_VALUE },
        },
      ]);
      const inputs = sentTo(mocks.ec2).map((call) => call.input);
      expect(inputs[0]).toMatchObject({
        OwnerIds: ['self'],
        Filters: [
          { Name: `tag:${TAG_MANAGED_BY}`, Values: [MANAGED_BY_VALUE] },
        ],
      });
      expect(inputs[1]?.NextToken).toBe('s1');
    });
  });

  describe('list', () => {
    it('sends list calls only: one per page, none per image', async () => {
      // Prepare: 7 images over 3 pages, each with its own snapshot.
      const images = [1, 2, 3, 4, 5, 6, 7].map((n) => ec2Image(`ami-${n}`));
      serveImages(mocks, pages(images, 3));
      mocks.autoScaling
        .on(DescribeLaunchConfigurationsCommand)
        .resolves({ LaunchConfigurations: [] });
      const counter = new ApiCallCounter();

      // Act
      const inventory = await source(counter).list();

      // Assess
      expect(inventory.images).toHaveLength(7);
      expect(counter.snapshot()).toEqual({
        DescribeImages: 3,
        DescribeLaunchTemplates: 1,
        DescribeLaunchConfigurations: 1,
        DescribeAutoScalingGroups: 1,
        DescribeInstances: 1,
        GetParametersByPath: 1,
        DescribeSnapshots: 1,
      });
      const names = new Set(sentTo(mocks.ec2).map((call) => call.command));
      expect([...names].every((name) => name.startsWith('Describe'))).toBe(
        true,
      );
    });
  });
});
