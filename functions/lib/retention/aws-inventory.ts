import {
  type AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
  type LaunchTemplateSpecification,
} from '@aws-sdk/client-auto-scaling';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import {
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { toImageRecord } from '../aws/image-store.ts';
import { tagMap } from '../aws/tags.ts';
import { MANAGED_BY_VALUE, TAG_MANAGED_BY } from '../constants.ts';
import { throttleAware } from '../errors.ts';
import type {
  AutoScalingGroupRef,
  InstanceRef,
  Inventory,
  InventoryImage,
  InventorySource,
  LaunchTemplateVersionRef,
  OtherImage,
  PublishedHistory,
  SnapshotCandidate,
  TemplateSpec,
} from './inventory.ts';
import { ApiCallCounter, collectPages } from './paging.ts';

/** Instance states that still hold an image; only terminated is left out. */
const LIVE_INSTANCE_STATES = [
  'pending',
  'running',
  'shutting-down',
  'stopping',
  'stopped',
];

/** Largest page each API accepts. */
const PAGE = {
  ec2: 1000,
  launchTemplates: 200,
  launchTemplateVersions: 200,
  autoScaling: 100,
  parametersByPath: 10,
  parameterHistory: 50,
  snapshotIdFilter: 200,
} as const;

/** Launch templates whose versions are listed at the same time. */
const TEMPLATE_CONCURRENCY = 5;

export interface AwsInventoryOptions {
  readonly ec2: EC2Client;
  readonly autoScaling: AutoScalingClient;
  readonly ssm: SSMClient;
  /** SSM path under which the pipeline publishes one parameter per profile. */
  readonly parameterPrefix: string;
  /** Further published parameters outside the prefix. */
  readonly parameterNames?: readonly string[];
  /** Snapshot ids the pipeline recorded (may be orphans without a tag). */
  readonly recordedSnapshotIds?: readonly string[];
  readonly counter?: ApiCallCounter;
}

/**
 * The inventory of this account and region from EC2, Auto Scaling and SSM:
 * list calls only, every page followed, nothing described image by image.
 */
export class AwsInventorySource implements InventorySource {
  readonly options: AwsInventoryOptions;
  readonly counter: ApiCallCounter;

  constructor(options: AwsInventoryOptions) {
    this.options = options;
    this.counter = options.counter ?? new ApiCallCounter();
  }

  async list(): Promise<Inventory> {
    const [
      images,
      launchTemplateVersions,
      launchConfigurations,
      autoScalingGroups,
      instances,
      published,
      snapshots,
    ] = await Promise.all([
      this.listImages(),
      this.listLaunchTemplateVersions(),
      this.listLaunchConfigurations(),
      this.listAutoScalingGroups(),
      this.listInstances(),
      this.listPublished(),
      this.listSnapshots(),
    ]);
    return {
      ...images,
      launchTemplateVersions,
      launchConfigurations,
      autoScalingGroups,
      instances,
      published,
      snapshots,
      recordedSnapshotIds: [...(this.options.recordedSnapshotIds ?? [])],
    };
  }

  /** Every image this account owns: the pipeline's are the candidates. */
  async listImages(): Promise<{
    images: InventoryImage[];
    otherImages: OtherImage[];
  }> {
    const all = await collectPages<Image>('DescribeImages', async (token) => {
      const output = await this.call('DescribeImages', () =>
        this.options.ec2.send(
          new DescribeImagesCommand({
            Owners: ['self'],
            IncludeDeprecated: true,
            IncludeDisabled: true,
            MaxResults: PAGE.ec2,
            NextToken: token,
          }),
        ),
      );
      return { items: output.Images ?? [], next: output.NextToken };
    });

    const images: InventoryImage[] = [];
    const otherImages: OtherImage[] = [];
    for (const image of all) {
      const ours = (image.Tags ?? []).some(
        (tag) => tag.Key === TAG_MANAGED_BY && tag.Value === MANAGED_BY_VALUE,
      );
      if (ours) {
        images.push({
          ...toImageRecord(image),
          deregistrationProtection:
            image.DeregistrationProtection?.startsWith('enabled') === true,
        });
      } else {
        otherImages.push({
          imageId: image.ImageId ?? '',
          snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((mapping) =>
            mapping.Ebs?.SnapshotId === undefined
              ? []
              : [mapping.Ebs.SnapshotId],
          ),
        });
      }
    }
    return { images, otherImages };
  }

  /**
   * Every version of every launch template, not only default and latest.
   * EC2 lists versions one template at a time, so this costs one call per
   * template (and page), never one per image.
   */
  async listLaunchTemplateVersions(): Promise<LaunchTemplateVersionRef[]> {
    const templates = await collectPages(
      'DescribeLaunchTemplates',
      async (token) => {
        const output = await this.call('DescribeLaunchTemplates', () =>
          this.options.ec2.send(
            new DescribeLaunchTemplatesCommand({
              MaxResults: PAGE.launchTemplates,
              NextToken: token,
              IncludeManagedResources: true,
            }),
          ),
        );
        return { items: output.LaunchTemplates ?? [], next: output.NextToken };
      },
    );

    const versions: LaunchTemplateVersionRef[] = [];
    for (let i = 0; i < templates.length; i += TEMPLATE_CONCURRENCY) {
      const batch = templates.slice(i, i + TEMPLATE_CONCURRENCY);
      const lists = await Promise.all(
        batch.map((template) =>
          this.listVersionsOf(
            template.LaunchTemplateId ?? '',
            template.LaunchTemplateName,
          ),
        ),
      );
      for (const list of lists) {
        versions.push(...list);
      }
    }
    return versions;
  }

  private async listVersionsOf(
    launchTemplateId: string,
    launchTemplateName: string | undefined,
  ): Promise<LaunchTemplateVersionRef[]> {
    const listing = `DescribeLaunchTemplateVersions ${launchTemplateId}`;
    const versions = await collectPages(listing, async (token) => {
      const output = await this.call('DescribeLaunchTemplateVersions', () =>
        this.options.ec2.send(
          new DescribeLaunchTemplateVersionsCommand({
            LaunchTemplateId: launchTemplateId,
            // An SSM alias shows as the AMI it resolves to now.
            ResolveAlias: true,
            MaxResults: PAGE.launchTemplateVersions,
            NextToken: token,
          }),
        ),
      );
      return {
        items: output.LaunchTemplateVersions ?? [],
        next: output.NextToken,
      };
    });
    return versions.map((version) => ({
      launchTemplateId: version.LaunchTemplateId ?? launchTemplateId,
      launchTemplateName: version.LaunchTemplateName ?? launchTemplateName,
      version: version.VersionNumber ?? 0,
      isDefault: version.DefaultVersion === true,
      imageId: version.LaunchTemplateData?.ImageId,
    }));
  }

  async listLaunchConfigurations(): Promise<Inventory['launchConfigurations']> {
    const configurations = await collectPages(
      'DescribeLaunchConfigurations',
      async (token) => {
        const output = await this.call('DescribeLaunchConfigurations', () =>
          this.options.autoScaling.send(
            new DescribeLaunchConfigurationsCommand({
              MaxRecords: PAGE.autoScaling,
              NextToken: token,
            }),
          ),
        );
        return {
          items: output.LaunchConfigurations ?? [],
          next: output.NextToken,
        };
      },
    );
    return configurations.map((configuration) => ({
      name: configuration.LaunchConfigurationName ?? '',
      imageId: configuration.ImageId,
    }));
  }

  async listAutoScalingGroups(): Promise<AutoScalingGroupRef[]> {
    const groups = await collectPages(
      'DescribeAutoScalingGroups',
      async (token) => {
        const output = await this.call('DescribeAutoScalingGroups', () =>
          this.options.autoScaling.send(
            new DescribeAutoScalingGroupsCommand({
              MaxRecords: PAGE.autoScaling,
              NextToken: token,
              IncludeManagedResources: true,
            }),
          ),
        );
        return {
          items: output.AutoScalingGroups ?? [],
          next: output.NextToken,
        };
      },
    );
    return groups.map((group) => {
      const mixed = group.MixedInstancesPolicy?.LaunchTemplate;
      return {
        name: group.AutoScalingGroupName ?? '',
        launchConfigurationName: group.LaunchConfigurationName,
        launchTemplate: templateSpec(group.LaunchTemplate),
        mixedInstancesTemplate: templateSpec(
          mixed?.LaunchTemplateSpecification,
        ),
        overrides: (mixed?.Overrides ?? []).map((override) => ({
          template: templateSpec(override.LaunchTemplateSpecification),
          imageId: override.ImageId,
        })),
      };
    });
  }

  async listInstances(): Promise<InstanceRef[]> {
    const reservations = await collectPages(
      'DescribeInstances',
      async (token) => {
        const output = await this.call('DescribeInstances', () =>
          this.options.ec2.send(
            new DescribeInstancesCommand({
              Filters: [
                { Name: 'instance-state-name', Values: LIVE_INSTANCE_STATES },
              ],
              IncludeManagedResources: true,
              MaxResults: PAGE.ec2,
              NextToken: token,
            }),
          ),
        );
        return { items: output.Reservations ?? [], next: output.NextToken };
      },
    );
    return reservations.flatMap((reservation) =>
      (reservation.Instances ?? []).map((instance) => ({
        instanceId: instance.InstanceId ?? '',
        imageId: instance.ImageId,
        state: instance.State?.Name ?? 'unknown',
      })),
    );
  }

  /** The history of every published parameter, newest value first. */
  async listPublished(): Promise<PublishedHistory[]> {
    const found = await collectPages('GetParametersByPath', async (token) => {
      const output = await this.call('GetParametersByPath', () =>
        this.options.ssm.send(
          new GetParametersByPathCommand({
            Path: this.options.parameterPrefix,
            Recursive: true,
            MaxResults: PAGE.parametersByPath,
            NextToken: token,
          }),
        ),
      );
      return { items: output.Parameters ?? [], next: output.NextToken };
    });
    const names = new Set([
      ...found.flatMap((parameter) =>
        parameter.Name === undefined ? [] : [parameter.Name],
      ),
      ...(this.options.parameterNames ?? []),
    ]);
    const histories: PublishedHistory[] = [];
    for (const name of [...names].sort()) {
      histories.push({ name, imageIds: await this.historyOf(name) });
    }
    return histories;
  }

  private async historyOf(name: string): Promise<string[]> {
    let entries: { version: number; value: string }[];
    try {
      entries = await collectPages(
        `GetParameterHistory ${name}`,
        async (token) => {
          const output = await this.call('GetParameterHistory', () =>
            this.options.ssm.send(
              new GetParameterHistoryCommand({
                Name: name,
                MaxResults: PAGE.parameterHistory,
                NextToken: token,
              }),
            ),
          );
          return {
            items: (output.Parameters ?? []).map((entry) => ({
              version: entry.Version ?? 0,
              value: entry.Value ?? '',
            })),
            next: output.NextToken,
          };
        },
      );
    } catch (error) {
      // A configured name that was never written has published nothing.
      if (error instanceof Error && error.name === 'ParameterNotFound') {
        return [];
      }
      throw error;
    }
    return entries
      .sort((a, b) => b.version - a.version)
      .map((entry) => entry.value)
      .filter((value) => value !== '');
  }

  /** Snapshots tagged by the pipeline, and those whose ids it recorded. */
  async listSnapshots(): Promise<SnapshotCandidate[]> {
    const tagged = await collectPages<Snapshot>(
      'DescribeSnapshots',
      async (token) => {
        const output = await this.call('DescribeSnapshots', () =>
          this.options.ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [
                { Name: `tag:${TAG_MANAGED_BY}`, Values: [MANAGED_BY_VALUE] },
              ],
              MaxResults: PAGE.ec2,
              NextToken: token,
            }),
          ),
        );
        return { items: output.Snapshots ?? [], next: output.NextToken };
      },
    );

    const byId = new Map<string, Snapshot>();
    for (const snapshot of tagged) {
      byId.set(snapshot.SnapshotId ?? '', snapshot);
    }
    const recorded = (this.options.recordedSnapshotIds ?? []).filter(
      (id) => !byId.has(id),
    );
    for (let i = 0; i < recorded.length; i += PAGE.snapshotIdFilter) {
      const ids = recorded.slice(i, i + PAGE.snapshotIdFilter);
      const found = await collectPages<Snapshot>(
        'DescribeSnapshots',
        async (token) => {
          const output = await this.call('DescribeSnapshots', () =>
            this.options.ec2.send(
              new DescribeSnapshotsCommand({
                OwnerIds: ['self'],
                // A filter, so an id already deleted is skipped, not an error.
                Filters: [{ Name: 'snapshot-id', Values: ids }],
                MaxResults: PAGE.ec2,
                NextToken: token,
              }),
            ),
          );
          return { items: output.Snapshots ?? [], next: output.NextToken };
        },
      );
      for (const snapshot of found) {
        byId.set(snapshot.SnapshotId ?? '', snapshot);
      }
    }

    return [...byId.values()].map((snapshot) => ({
      snapshotId: snapshot.SnapshotId ?? '',
      createdAt: snapshot.StartTime?.toISOString(),
      tags: tagMap(snapshot.Tags),
    }));
  }

  private call<T>(command: string, send: () => Promise<T>): Promise<T> {
    this.counter.add(command);
    return throttleAware(command, send);
  }
}

function templateSpec(
  spec: LaunchTemplateSpecification | undefined,
): TemplateSpec | undefined {
  if (spec === undefined) {
    return undefined;
  }
  return {
    launchTemplateId: spec.LaunchTemplateId,
    launchTemplateName: spec.LaunchTemplateName,
    version: spec.Version,
  };
}
