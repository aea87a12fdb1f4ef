/**
 * Retention at scale: 10,000 images, 2,000 launch template versions, 5,000
 * instances and 500 Auto Scaling groups, listed through the AWS adapter
 * against aws-sdk-client-mock serving pages of 1,000, then planned. Prints
 * CPU time of listing and planning and the API calls sent per command.
 */
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
  type Instance,
  type LaunchTemplateVersion,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import {
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_PROFILE,
  TAG_RUN_ID,
  TAG_VALIDATED,
} from '../functions/lib/constants.ts';
import {
  awsCleanupDeps,
  DEFAULT_POLICY,
  planRetention,
  runCleanup,
} from '../functions/lib/retention/index.ts';

const SIZE = {
  images: 10_000,
  orphanSnapshots: 200,
  launchTemplates: 100,
  versionsPerTemplate: 20,
  instances: 5_000,
  autoScalingGroups: 500,
  profiles: 20,
  historyPerProfile: 30,
};
const PAGE = 1_000;
const NOW = new Date('2025-06-01T12:00:00Z');

type Paged = { NextToken?: string };

/** Serves a list in pages of 1,000; the token is the next offset. */
function paged<T>(items: readonly T[], input: Paged) {
  const start = Number(input.NextToken ?? 0);
  const end = start + PAGE;
  return {
    items: items.slice(start, end),
    next: end < items.length ? String(end) : undefined,
  };
}

function imageId(n: number): string {
  return `ami-${n.toString(16).padStart(17, '0')}`;
}

function buildAccount() {
  const images: Image[] = [];
  const snapshots: Snapshot[] = [];
  for (let n = 0; n < SIZE.images; n += 1) {
    const created = new Date(NOW.getTime() - (n + 1) * 3_600_000);
    const snapshotId = `snap-${n.toString(16).padStart(17, '0')}`;
    const tags = [
      { Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE },
      { Key: TAG_PROFILE, Value: `profile-${n % SIZE.profiles}` },
      { Key: TAG_RUN_ID, Value: `run-${n}` },
      ...(n % 3 === 0 ? [{ Key: TAG_VALIDATED, Value: 'true' }] : []),
    ];
    images.push({
      ImageId: imageId(n),
      Name: `sbc-${n}`,
      State: n % 50 === 0 ? 'failed' : 'available',
      CreationDate: created.toISOString(),
      OwnerId: '111122223333',
      Tags: tags,
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId } },
      ],
    });
    snapshots.push({ SnapshotId: snapshotId, StartTime: created, Tags: tags });
  }
  for (let n = 0; n < SIZE.orphanSnapshots; n += 1) {
    snapshots.push({
      SnapshotId: `snap-orphan-${n}`,
      StartTime: new Date(NOW.getTime() - 90 * 86_400_000),
      Tags: [{ Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE }],
    });
  }

  const templates = Array.from({ length: SIZE.launchTemplates }, (_, t) => ({
    LaunchTemplateId: `lt-${t}`,
    LaunchTemplateName: `sbc-${t}`,
  }));
  const versions = new Map<string, LaunchTemplateVersion[]>();
  for (const [t, template] of templates.entries()) {
    versions.set(
      template.LaunchTemplateId,
      Array.from({ length: SIZE.versionsPerTemplate }, (_, v) => ({
        LaunchTemplateId: template.LaunchTemplateId,
        VersionNumber: v + 1,
        DefaultVersion: v === SIZE.versionsPerTemplate - 1,
        LaunchTemplateData: {
          ImageId: imageId((t * SIZE.versionsPerTemplate + v) * 4),
        },
      })),
    );
  }

  const instances: Instance[] = Array.from(
    { length: SIZE.instances },
    (_, n) => ({
      InstanceId: `i-${n}`,
      ImageId: imageId(n * 2),
      State: { Name: n % 7 === 0 ? 'stopped' : 'running' },
    }),
  );

  const groups = Array.from({ length: SIZE.autoScalingGroups }, (_, g) => ({
    AutoScalingGroupName: `asg-${g}`,
    MinSize: 0,
    MaxSize: 4,
    DesiredCapacity: 2,
    DefaultCooldown: 300,
    AvailabilityZones: [],
    HealthCheckType: 'EC2',
    CreatedTime: NOW,
    ...(g % 2 === 0
      ? {
          LaunchTemplate: {
            LaunchTemplateId: `lt-${g % SIZE.launchTemplates}`,
            Version: '$Latest',
          },
        }
      : {
          MixedInstancesPolicy: {
            LaunchTemplate: {
              LaunchTemplateSpecification: {
                LaunchTemplateId: `lt-${g % SIZE.launchTemplates}`,
                Version: '$Default',
              },
              Overrides: [{ InstanceType: 'c6i.large', ImageId: imageId(g) }],
            },
          },
        }),
  }));

  const parameters = Array.from({ length: SIZE.profiles }, (_, p) => ({
    Name: `/sbc-ami/profile-${p}/image-id`,
  }));
  return {
    images,
    snapshots,
    templates,
    versions,
    instances,
    groups,
    parameters,
  };
}

function mockAccount(account: ReturnType<typeof buildAccount>) {
  const ec2 = mockClient(EC2Client);
  const autoScaling = mockClient(AutoScalingClient);
  const ssm = mockClient(SSMClient);
  const codeBuild = mockClient(CodeBuildClient);

  ec2.on(DescribeImagesCommand).callsFake((input: Paged) => {
    const page = paged(account.images, input);
    return { Images: page.items, NextToken: page.next };
  });
  ec2.on(DescribeSnapshotsCommand).callsFake((input: Paged) => {
    const page = paged(account.snapshots, input);
    return { Snapshots: page.items, NextToken: page.next };
  });
  ec2.on(DescribeLaunchTemplatesCommand).callsFake((input: Paged) => {
    const page = paged(account.templates, input);
    return { LaunchTemplates: page.items, NextToken: page.next };
  });
  ec2
    .on(DescribeLaunchTemplateVersionsCommand)
    .callsFake((input: Paged & { LaunchTemplateId?: string }) => {
      const all = account.versions.get(input.LaunchTemplateId ?? '') ?? [];
      const page = paged(all, input);
      return { LaunchTemplateVersions: page.items, NextToken: page.next };
    });
  ec2
    .on(DescribeInstancesCommand)
    .callsFake((input: Paged & { Filters?: { Name?: string }[] }) => {
      // The leftover listing (tagged with a run id) finds none here.
      if (input.Filters?.some((filter) => filter.Name === 'tag-key')) {
        return { Reservations: [] };
      }
      const page = paged(account.instances, input);
      return {
        Reservations: [{ Instances: page.items }],
        NextToken: page.next,
      };
    });
  ec2.on(DescribeKeyPairsCommand).resolves({ KeyPairs: [] });
  ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
  autoScaling
    .on(DescribeLaunchConfigurationsCommand)
    .resolves({ LaunchConfigurations: [] });
  autoScaling.on(DescribeAutoScalingGroupsCommand).callsFake((input) => {
    const page = paged(account.groups, { NextToken: input.NextToken });
    return { AutoScalingGroups: page.items, NextToken: page.next };
  });
  ssm
    .on(GetParametersByPathCommand)
    .resolves({ Parameters: account.parameters });
  ssm.on(GetParameterHistoryCommand).callsFake((input: { Name?: string }) => {
    const p = Number(/profile-(\d+)/.exec(input.Name ?? '')?.[1] ?? 0);
    return {
      Parameters: Array.from({ length: SIZE.historyPerProfile }, (_, v) => ({
        Version: v + 1,
        Value: imageId((SIZE.historyPerProfile - v) * SIZE.profiles + p),
      })),
    };
  });
  codeBuild.on(ListBuildsForProjectCommand).resolves({ ids: ['b:1'] });
  codeBuild.on(BatchGetBuildsCommand).resolves({
    builds: [{ id: 'b:1', buildComplete: true, startTime: NOW }],
  });
  const all = [ec2, autoScaling, ssm, codeBuild];
  return {
    /** Commands received so far, per mock, in the order each received them. */
    commands: () =>
      all.map((mock) =>
        mock
          .calls()
          .map((call) =>
            (call.args[0] as object).constructor.name.replace(/Command$/, ''),
          ),
      ),
    restore: () => {
      for (const mock of all) {
        mock.restore();
      }
    },
  };
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function deps() {
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
  });
}

export async function bench(): Promise<void> {
  const account = buildAccount();
  const mocks = mockAccount(account);
  try {
    // Warm-up: module loading and the first mock calls are not the work.
    await deps().inventory.list();

    const listing = deps();
    let start = process.cpuUsage();
    let wall = performance.now();
    const inventory = await listing.inventory.list();
    const listCpu = cpuMs(start);
    const listWall = performance.now() - wall;
    const listCalls = listing.apiCalls?.() ?? {};

    start = process.cpuUsage();
    wall = performance.now();
    const plan = planRetention(inventory, DEFAULT_POLICY, NOW);
    const planCpu = cpuMs(start);
    const planWall = performance.now() - wall;
    // A second plan of the same inventory: the cost once the code is hot.
    start = process.cpuUsage();
    planRetention(inventory, DEFAULT_POLICY, NOW);
    const warmPlanCpu = cpuMs(start);

    const whole = deps();
    const before = mocks.commands().map((calls) => calls.length);
    start = process.cpuUsage();
    const report = await runCleanup(whole, {
      dryRun: true,
      policy: DEFAULT_POLICY,
      now: NOW,
    });
    const runCpu = cpuMs(start);
    const sent = mocks
      .commands()
      .flatMap((calls, index) => calls.slice(before[index]));

    const count = (action: string) =>
      plan.decisions.filter((d) => d.action === action).length;
    const versions = inventory.launchTemplateVersions?.length ?? 0;
    console.log('retention bench (aws-sdk-client-mock, pages of 1,000)');
    console.log(
      `  inventory: ${inventory.images.length} images, ${versions} launch ` +
        `template versions, ${inventory.instances?.length ?? 0} instances, ` +
        `${inventory.autoScalingGroups?.length ?? 0} Auto Scaling groups, ` +
        `${inventory.snapshots?.length ?? 0} snapshots`,
    );
    console.log(
      `  listing : ${listCpu.toFixed(1)} ms CPU, ${listWall.toFixed(1)} ms ` +
        'wall (includes the mock serving the pages)',
    );
    console.log(
      `  planning: ${planCpu.toFixed(1)} ms CPU, ${planWall.toFixed(1)} ms ` +
        `wall; ${count('keep')} keep, ${count('delete')} delete ` +
        `(cap ${DEFAULT_POLICY.maxDeletes}); a second plan ` +
        `${warmPlanCpu.toFixed(1)} ms CPU`,
    );
    console.log(
      `  dry run : ${runCpu.toFixed(1)} ms CPU for list + plan + build ` +
        `lookup; ${report.decisions.length} candidates`,
    );
    console.log('  API calls of one listing, by command:');
    for (const [command, calls] of Object.entries(listCalls).sort()) {
      console.log(`    ${command.padEnd(32)} ${calls}`);
    }
    const tally: Record<string, number> = {};
    for (const command of sent) {
      tally[command] = (tally[command] ?? 0) + 1;
    }
    console.log('  API calls of the dry run, as the mocks received them:');
    for (const [command, calls] of Object.entries(tally).sort()) {
      console.log(`    ${command.padEnd(32)} ${calls}`);
    }
    const perImage = sent.filter(
      (command) => !/^(Describe|List|Get|BatchGet)/.test(command),
    );
    console.log(`  calls other than list/describe: ${perImage.length}`);
  } finally {
    mocks.restore();
  }
}
