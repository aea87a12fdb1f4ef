import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  BatchGetBuildsCommand,
  type Build,
  CodeBuildClient,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteLaunchTemplateVersionsCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
  ModifyLaunchTemplateCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import {
  DEBIAN_OWNER_ID,
  MANAGED_BY_VALUE,
  TAG_BASE_IMAGE,
  TAG_MANAGED_BY,
  TAG_RUN_ID,
  TAG_SOURCE_REVISION,
  TAG_TEMPLATE_DIGEST,
} from '../../functions/lib/constants.ts';
import { kmsSignsWith, p256 } from '../attest/fixtures.ts';

export const REGION = 'eu-west-1';
export const ACCOUNT = '111122223333';
export const PROFILE_BUCKET = 'sbc-ami-config-111122223333';
export const PROFILE_KEY = 'profiles/genesys-byoc.json';
export const PROFILE_VERSION = '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY';
export const ARTIFACTS_BUCKET = 'sbc-ami-artifacts-111122223333';
export const PROJECT = 'sbc-ami-build';
export const BASE_IMAGE_ID = 'ami-0deb12base0000001';
export const IMAGE_ID = 'ami-0a1b2c3d4e5f60718';
export const SNAPSHOT_ID = 'snap-0aaaaaaaaaaaaaaa1';
export const INSTANCE_ID = 'i-0123456789abcdef0';
export const BUILDER_INSTANCE_ID = 'i-0packerbuilder00001';
export const BUILDER_KEY_PAIR_ID = 'key-0packer000000001';
export const BUILDER_GROUP_ID = 'sg-0packer0000000001';
export const LAUNCH_TEMPLATE_ID = 'lt-0abc1234def567890';
export const PARAMETER_NAME = '/sbc-ami/genesys-byoc-example/image-id';
export const TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:sbc-ami`;
export const KMS_KEY_ID = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

export const EXAMPLE_PROFILE = readFileSync(
  join(
    import.meta.dirname,
    '..',
    '..',
    'examples',
    'profiles',
    'genesys-byoc.json',
  ),
);

const RUNNING = { state: 'running', checks: 'ok' };

/** The image the example profile's parameter held before a run. */
export const PREVIOUS_IMAGE_ID = 'ami-0previous00000001';

/** A second launch template, configured only by the tests that use it. */
export const SECOND_TEMPLATE_ID = 'lt-0def5678abc123456';

/** One launch template: its versions' images, its default and its latest. */
export interface TemplateState {
  readonly versions: Map<number, string>;
  defaultVersion: number;
  /** The highest number ever given: EC2 never reuses a deleted one. */
  latestVersion: number;
}

function templateState(): TemplateState {
  return {
    versions: new Map([
      ...[1, 2, 3, 4, 5].map((v): [number, string] => [
        v,
        `ami-0older0000000000${v}`,
      ]),
      [6, PREVIOUS_IMAGE_ID],
    ]),
    defaultVersion: 6,
    latestVersion: 6,
  };
}

/** A build status CodeBuild reports, in the order the checks see them. */
export interface BuildLook {
  readonly status: string;
  readonly phase: string;
}

/** What EC2 answers for the new image at each look; `missing` = not visible. */
export type ImageLook = 'missing' | Partial<Image>;

/**
 * A small simulation of the AWS services the pipeline calls, on
 * aws-sdk-client-mock. Each service keeps state, so the commands a run
 * sends can be read back and asserted on, in order.
 */
export class AwsWorld {
  readonly ec2 = mockClient(EC2Client);
  readonly codebuild = mockClient(CodeBuildClient);
  readonly s3 = mockClient(S3Client);
  readonly ssm = mockClient(SSMClient);
  readonly sns = mockClient(SNSClient);
  readonly kms = mockClient(KMSClient);
  readonly autoscaling = mockClient(AutoScalingClient);

  /** Build statuses in order; the last one repeats. */
  buildLooks: BuildLook[] = [
    { status: 'IN_PROGRESS', phase: 'BUILD' },
    { status: 'SUCCEEDED', phase: 'COMPLETED' },
  ];
  /** StartBuild refusals before it accepts, by error name. */
  startBuildRefusals: string[] = [];
  /** The manifest's entries; `run_id` of this run is filled in at start. */
  manifest:
    | 'none'
    | Array<{ runId: string; imageId: string; buildTime: number }> = [
    {
      runId: 'sbc-0lderrun00000000',
      imageId: 'ami-0old00000000000001',
      buildTime: 1_764_000_000,
    },
    { runId: 'CURRENT', imageId: IMAGE_ID, buildTime: 1_764_547_200 },
  ];
  imageLooks: ImageLook[] = [{ State: 'available' }];
  /** When set, what listing Debian's images answers instead. */
  baseImages?: Image[];
  /** When set, decides each look at the build or the image instead. */
  buildLookNow?: () => BuildLook;
  imageLookNow?: () => ImageLook;
  snapshotState = 'completed';
  instanceLooks: Array<{ state: string; checks: string }> = [
    { state: 'pending', checks: 'initializing' },
    { state: 'running', checks: 'ok' },
  ];
  instanceAddress = '127.0.0.1';
  /** Whether the builder left an instance, key pair and group for the run. */
  builderLeftovers = false;
  private currentInstanceLook = RUNNING;

  readonly builds: string[] = [];
  readonly objects = new Map<string, string>();
  imageDeregistered = false;
  /**
   * The parameter's values, oldest first (its history); empty when it does
   * not exist. Versions are 1-based positions.
   */
  parameterHistory: string[] = [];
  /**
   * Launch templates by id. Each has versions 1 to 6, the default (6)
   * naming the previously published image. The parameter starts absent:
   * a test that needs a previous value sets it.
   */
  readonly launchTemplates = new Map<string, TemplateState>([
    [LAUNCH_TEMPLATE_ID, templateState()],
    [SECOND_TEMPLATE_ID, templateState()],
  ]);
  /**
   * Refusals by operation (`ModifyLaunchTemplate`), or by operation and
   * launch template (`CreateLaunchTemplateVersion lt-…`): error names in
   * call order, `null` for a call that goes through.
   */
  readonly refusals = new Map<string, (string | null)[]>();
  private buildChecks = 0;
  private imageLooksSeen = 0;
  private instanceLooksSeen = 0;
  private runId = '';
  private readonly imageTags = new Map<string, string>();
  readonly key = p256();

  constructor() {
    this.objects.set(
      `${PROFILE_BUCKET}/${PROFILE_KEY}`,
      EXAMPLE_PROFILE.toString('utf8'),
    );
    this.wireS3();
    this.wireCodeBuild();
    this.wireEc2();
    this.wireRetentionListings();
    this.wireSsm();
    this.sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    kmsSignsWith(this.kms, this.key);
  }

  /** The parameter's current value; setting it is a PutParameter. */
  get parameterValue(): string | undefined {
    return this.parameterHistory.at(-1);
  }

  set parameterValue(value: string | undefined) {
    if (value === undefined) {
      this.parameterHistory = [];
    } else {
      this.parameterHistory.push(value);
    }
  }

  /** A launch template's state. */
  template(id = LAUNCH_TEMPLATE_ID): TemplateState {
    const template = this.launchTemplates.get(id);
    if (template === undefined) {
      throw new Error(`no launch template ${id}`);
    }
    return template;
  }

  /**
   * Queues the outcomes of the next calls of an operation (`key`: the
   * operation, or the operation and a launch template id): an error name
   * refuses that call, `null` lets it through.
   */
  refuse(key: string, ...outcomes: (string | null)[]): void {
    this.refusals.set(key, [...(this.refusals.get(key) ?? []), ...outcomes]);
  }

  /** Throws the next queued refusal of the call, if any. */
  private refusal(operation: string, templateId?: string): void {
    for (const key of [`${operation} ${templateId}`, operation]) {
      const queue = this.refusals.get(key);
      if (queue !== undefined && queue.length > 0) {
        const name = queue.shift();
        if (name !== null && name !== undefined) {
          throw Object.assign(new Error(`${name} for ${key}`), { name });
        }
        return;
      }
    }
  }

  /** Releases the client mocks. */
  restore(): void {
    for (const mock of [
      this.ec2,
      this.codebuild,
      this.s3,
      this.ssm,
      this.sns,
      this.kms,
      this.autoscaling,
    ]) {
      mock.restore();
    }
  }

  /** The names of the commands a client received, in order. */
  commandNames(mock: {
    calls(): { args: [{ constructor: { name: string } }] }[];
  }) {
    return mock.calls().map((call) => call.args[0].constructor.name);
  }

  private wireS3(): void {
    this.s3
      .on(GetObjectCommand)
      .callsFake((input: GetObjectCommand['input']) => {
        const key = `${input.Bucket}/${input.Key}`;
        if (
          key ===
          `${ARTIFACTS_BUCKET}/builds/${this.builds.at(-1)}/packer-manifest.json`
        ) {
          if (this.manifest === 'none') {
            throw Object.assign(new Error('no such key'), {
              name: 'NoSuchKey',
            });
          }
          return body(manifestJson(this.manifest, this.runId));
        }
        const text = this.objects.get(key);
        if (text === undefined) {
          throw Object.assign(new Error('no such key'), { name: 'NoSuchKey' });
        }
        return {
          ...body(text),
          VersionId:
            input.Bucket === PROFILE_BUCKET ? PROFILE_VERSION : undefined,
        };
      });
    this.s3
      .on(PutObjectCommand)
      .callsFake((input: PutObjectCommand['input']) => {
        this.objects.set(`${input.Bucket}/${input.Key}`, String(input.Body));
        return { VersionId: 'v1' };
      });
  }

  private wireCodeBuild(): void {
    this.codebuild
      .on(StartBuildCommand)
      .callsFake((input: StartBuildCommand['input']) => {
        const refusal = this.startBuildRefusals.shift();
        if (refusal !== undefined) {
          throw Object.assign(new Error(`${refusal} for StartBuild`), {
            name: refusal,
          });
        }
        const runId = input.environmentVariablesOverride?.find(
          (v) => v.name === 'RUN_ID',
        )?.value;
        this.runId = runId ?? '';
        const id = `${PROJECT}:${String(this.builds.length + 1).padStart(4, '0')}`;
        this.builds.push(id);
        return {
          build: { id, buildStatus: 'IN_PROGRESS', currentPhase: 'SUBMITTED' },
        };
      });
    this.codebuild
      .on(BatchGetBuildsCommand)
      .callsFake((input: BatchGetBuildsCommand['input']) => {
        const look =
          this.buildLookNow?.() ??
          this.buildLooks[
            Math.min(this.buildChecks, this.buildLooks.length - 1)
          ];
        this.buildChecks += 1;
        const id = input.ids?.[0] ?? '';
        const build: Build = {
          id,
          buildStatus: look?.status as Build['buildStatus'],
          currentPhase: look?.phase,
          artifacts: {
            location: `arn:aws:s3:::${ARTIFACTS_BUCKET}/builds/${id}`,
          },
        };
        return { builds: [build] };
      });
    this.codebuild.on(StopBuildCommand).resolves({});
  }

  private wireEc2(): void {
    this.ec2
      .on(DescribeImagesCommand)
      .callsFake((input: DescribeImagesCommand['input']) => {
        if (input.Owners !== undefined) {
          if (this.baseImages !== undefined) {
            return { Images: this.baseImages };
          }
          if (input.Owners.includes(DEBIAN_OWNER_ID)) {
            return {
              Images: [
                debianImage('ami-0deb12old0000000', '2026-10-01T00:00:00.000Z'),
                debianImage(BASE_IMAGE_ID, '2026-11-20T00:00:00.000Z'),
              ],
            };
          }
          return { Images: [] };
        }
        if (!input.ImageIds?.includes(IMAGE_ID) || this.imageDeregistered) {
          return { Images: [] };
        }
        const look =
          this.imageLookNow?.() ??
          this.imageLooks[
            Math.min(this.imageLooksSeen, this.imageLooks.length - 1)
          ];
        this.imageLooksSeen += 1;
        if (look === 'missing' || look === undefined) {
          throw Object.assign(new Error('not found'), {
            name: 'InvalidAMIID.NotFound',
          });
        }
        return { Images: [this.image(look)] };
      });
    this.ec2.on(DescribeSnapshotsCommand).callsFake(() => ({
      Snapshots: [
        {
          SnapshotId: SNAPSHOT_ID,
          State: this.snapshotState,
          Encrypted: true,
          StateMessage: 'copy failed',
        },
      ],
    }));
    this.ec2
      .on(CreateTagsCommand)
      .callsFake((input: CreateTagsCommand['input']) => {
        for (const tag of input.Tags ?? []) {
          this.imageTags.set(tag.Key ?? '', tag.Value ?? '');
        }
        return {};
      });
    this.ec2.on(DeregisterImageCommand).callsFake(() => {
      this.imageDeregistered = true;
      return {};
    });
    this.ec2.on(DeleteSnapshotCommand).resolves({});
    this.ec2.on(RunInstancesCommand).resolves({
      Instances: [{ InstanceId: INSTANCE_ID }],
    });
    this.ec2
      .on(DescribeInstancesCommand)
      .callsFake((input: DescribeInstancesCommand['input']) => {
        if (input.InstanceIds === undefined) {
          return {
            Reservations: this.leftoversFor(input.Filters, () => [
              {
                Instances: [
                  {
                    InstanceId: BUILDER_INSTANCE_ID,
                    State: { Name: 'running' },
                    Tags: this.runTags(),
                  },
                ],
              },
            ]),
          };
        }
        const look =
          this.instanceLooks[
            Math.min(this.instanceLooksSeen, this.instanceLooks.length - 1)
          ] ?? RUNNING;
        this.instanceLooksSeen += 1;
        this.currentInstanceLook = look;
        return {
          Reservations: [
            {
              Instances: [
                {
                  InstanceId: INSTANCE_ID,
                  State: { Name: look.state },
                  PrivateIpAddress: this.instanceAddress,
                },
              ],
            },
          ],
        };
      });
    this.ec2.on(DescribeInstanceStatusCommand).callsFake(() => {
      const look = this.currentInstanceLook;
      return {
        InstanceStatuses: [
          {
            InstanceId: INSTANCE_ID,
            InstanceState: { Name: look.state },
            SystemStatus: { Status: look.checks },
            InstanceStatus: { Status: look.checks },
          },
        ],
      };
    });
    this.ec2.on(TerminateInstancesCommand).resolves({
      TerminatingInstances: [
        { InstanceId: INSTANCE_ID, PreviousState: { Name: 'running' } },
      ],
    });
    this.wireLaunchTemplates();
  }

  /** Launch templates with versions, a default, and refusals on demand. */
  private wireLaunchTemplates(): void {
    const find = (id: string | undefined) => {
      const template = this.launchTemplates.get(id ?? '');
      if (template === undefined) {
        throw Object.assign(new Error(`no launch template ${id}`), {
          name: 'InvalidLaunchTemplateId.NotFound',
        });
      }
      return template;
    };
    this.ec2
      .on(DescribeLaunchTemplatesCommand)
      .callsFake((input: DescribeLaunchTemplatesCommand['input']) => {
        this.refusal('DescribeLaunchTemplates');
        const ids = input.LaunchTemplateIds ?? [...this.launchTemplates.keys()];
        return {
          LaunchTemplates: ids.map((id) => {
            const template = find(id);
            return {
              LaunchTemplateId: id,
              LaunchTemplateName: `sbc-${id}`,
              DefaultVersionNumber: template.defaultVersion,
              LatestVersionNumber: template.latestVersion,
            };
          }),
        };
      });
    this.ec2
      .on(DescribeLaunchTemplateVersionsCommand)
      .callsFake((input: DescribeLaunchTemplateVersionsCommand['input']) => {
        this.refusal('DescribeLaunchTemplateVersions');
        const id = input.LaunchTemplateId ?? '';
        const template = find(id);
        const imageFilter = input.Filters?.find((f) => f.Name === 'image-id');
        return {
          LaunchTemplateVersions: [...template.versions]
            .filter(
              ([, imageId]) =>
                imageFilter === undefined ||
                (imageFilter.Values ?? []).includes(imageId),
            )
            .map(([version, imageId]) => ({
              LaunchTemplateId: id,
              VersionNumber: version,
              DefaultVersion: version === template.defaultVersion,
              LaunchTemplateData: { ImageId: imageId },
            })),
        };
      });
    this.ec2
      .on(CreateLaunchTemplateVersionCommand)
      .callsFake((input: CreateLaunchTemplateVersionCommand['input']) => {
        this.refusal('CreateLaunchTemplateVersion', input.LaunchTemplateId);
        const template = find(input.LaunchTemplateId);
        template.latestVersion += 1;
        const version = template.latestVersion;
        template.versions.set(
          version,
          input.LaunchTemplateData?.ImageId ?? 'ami-none',
        );
        return {
          LaunchTemplateVersion: {
            LaunchTemplateId: input.LaunchTemplateId,
            VersionNumber: version,
          },
        };
      });
    this.ec2
      .on(ModifyLaunchTemplateCommand)
      .callsFake((input: ModifyLaunchTemplateCommand['input']) => {
        this.refusal('ModifyLaunchTemplate', input.LaunchTemplateId);
        const template = find(input.LaunchTemplateId);
        const version = Number(input.DefaultVersion);
        if (!template.versions.has(version)) {
          throw Object.assign(new Error(`no version ${version}`), {
            name: 'InvalidLaunchTemplateVersion.NotFound',
          });
        }
        template.defaultVersion = version;
        return {};
      });
    this.ec2
      .on(DeleteLaunchTemplateVersionsCommand)
      .callsFake((input: DeleteLaunchTemplateVersionsCommand['input']) => {
        this.refusal('DeleteLaunchTemplateVersions', input.LaunchTemplateId);
        const id = input.LaunchTemplateId ?? '';
        const template = find(id);
        const deleted = [];
        const refused = [];
        for (const version of (input.Versions ?? []).map(Number)) {
          if (version === template.defaultVersion) {
            refused.push({
              LaunchTemplateId: id,
              VersionNumber: version,
              ResponseError: {
                Code: 'unexpectedError' as const,
                Message: 'the default version cannot be deleted',
              },
            });
          } else if (template.versions.delete(version)) {
            deleted.push({ LaunchTemplateId: id, VersionNumber: version });
          } else {
            refused.push({
              LaunchTemplateId: id,
              VersionNumber: version,
              ResponseError: {
                Code: 'launchTemplateVersionDoesNotExist' as const,
                Message: 'no such version',
              },
            });
          }
        }
        return {
          SuccessfullyDeletedLaunchTemplateVersions: deleted,
          UnsuccessfullyDeletedLaunchTemplateVersions: refused,
        };
      });
  }

  /**
   * Listings of the retention policy and the leftover sweep: no other
   * images, groups or configurations (launch templates are wired apart).
   */
  private wireRetentionListings(): void {
    this.ec2
      .on(DescribeKeyPairsCommand)
      .callsFake((input: DescribeKeyPairsCommand['input']) => ({
        KeyPairs: this.leftoversFor(input.Filters, () => [
          {
            KeyPairId: BUILDER_KEY_PAIR_ID,
            KeyName: 'packer_1',
            Tags: this.runTags(),
          },
        ]),
      }));
    this.ec2
      .on(DescribeSecurityGroupsCommand)
      .callsFake((input: DescribeSecurityGroupsCommand['input']) => ({
        SecurityGroups: this.leftoversFor(input.Filters, () => [
          {
            GroupId: BUILDER_GROUP_ID,
            GroupName: 'packer_1',
            Tags: this.runTags(),
          },
        ]),
      }));
    this.ec2.on(DeleteKeyPairCommand).resolves({});
    this.ec2.on(DeleteSecurityGroupCommand).resolves({});
    this.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [],
    });
    this.autoscaling.on(DescribeLaunchConfigurationsCommand).resolves({
      LaunchConfigurations: [],
    });
  }

  private wireSsm(): void {
    const notFound = () =>
      Object.assign(new Error(`parameter ${PARAMETER_NAME} not found`), {
        name: 'ParameterNotFound',
      });
    this.ssm
      .on(PutParameterCommand)
      .callsFake((input: PutParameterCommand['input']) => {
        this.refusal('PutParameter');
        this.parameterValue = input.Value;
        return { Version: this.parameterHistory.length };
      });
    this.ssm
      .on(GetParameterCommand)
      .callsFake((input: GetParameterCommand['input']) => {
        if (this.parameterValue === undefined) {
          throw notFound();
        }
        return {
          Parameter: {
            Name: input.Name,
            Value: this.parameterValue,
            DataType: 'aws:ec2:image',
            Version: this.parameterHistory.length,
          },
        };
      });
    this.ssm.on(DeleteParameterCommand).callsFake(() => {
      this.refusal('DeleteParameter');
      if (this.parameterValue === undefined) {
        throw notFound();
      }
      this.parameterValue = undefined;
      return {};
    });
    this.ssm.on(GetParametersByPathCommand).callsFake(() => ({
      Parameters:
        this.parameterValue === undefined
          ? []
          : [{ Name: PARAMETER_NAME, Value: this.parameterValue }],
    }));
    this.ssm.on(GetParameterHistoryCommand).callsFake(() => {
      if (this.parameterValue === undefined) {
        throw notFound();
      }
      return {
        Parameters: this.parameterHistory.map((value, index) => ({
          Name: PARAMETER_NAME,
          Value: value,
          Version: index + 1,
        })),
      };
    });
  }

  /** The builder's leftovers, for a listing filtered on this run's tag. */
  private leftoversFor<T>(
    filters: { Name?: string; Values?: string[] }[] | undefined,
    items: () => T[],
  ): T[] {
    const runFilter = filters?.find((f) => f.Name === `tag:${TAG_RUN_ID}`);
    return this.builderLeftovers && runFilter?.Values?.includes(this.runId)
      ? items()
      : [];
  }

  private runTags() {
    return [
      { Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE },
      { Key: TAG_RUN_ID, Value: this.runId },
    ];
  }

  private image(look: Partial<Image>): Image {
    return {
      ImageId: IMAGE_ID,
      Name: 'sbc-ami-genesys-byoc-20261201',
      State: 'available',
      CreationDate: '2026-12-01T00:20:00.000Z',
      Architecture: 'x86_64',
      OwnerId: ACCOUNT,
      Public: false,
      ImdsSupport: 'v2.0',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: { SnapshotId: SNAPSHOT_ID, Encrypted: true, VolumeType: 'gp3' },
        },
        { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
      ],
      ...look,
      Tags: [
        { Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE },
        { Key: TAG_RUN_ID, Value: this.runId },
        { Key: TAG_BASE_IMAGE, Value: BASE_IMAGE_ID },
        { Key: TAG_TEMPLATE_DIGEST, Value: 'a'.repeat(64) },
        {
          Key: TAG_SOURCE_REVISION,
          Value: '0123456789abcdef0123456789abcdef01234567',
        },
        ...[...this.imageTags].map(([Key, Value]) => ({ Key, Value })),
      ],
    };
  }
}

function debianImage(imageId: string, created: string): Image {
  return {
    ImageId: imageId,
    Name: `debian-12-amd64-${created.slice(0, 10).replaceAll('-', '')}-1`,
    State: 'available',
    OwnerId: DEBIAN_OWNER_ID,
    CreationDate: created,
    Architecture: 'x86_64',
  };
}

function manifestJson(
  entries: Array<{ runId: string; imageId: string; buildTime: number }>,
  currentRunId: string,
): string {
  return JSON.stringify({
    builds: entries.map((entry) => ({
      name: 'sbc',
      builder_type: 'amazon-ebs',
      build_time: entry.buildTime,
      artifact_id: `${REGION}:${entry.imageId}`,
      packer_run_uuid: `uuid-${entry.buildTime}`,
      custom_data: {
        run_id: entry.runId === 'CURRENT' ? currentRunId : entry.runId,
      },
    })),
    last_run_uuid: 'uuid-last',
  });
}

function body(text: string): { Body: GetObjectCommandOutput['Body'] } {
  const bytes = new TextEncoder().encode(text);
  const stream = {
    transformToString: async () => text,
    transformToByteArray: async () => bytes,
  };
  return { Body: stream as unknown as GetObjectCommandOutput['Body'] };
}
