import { StartBuildCommand, StopBuildCommand } from '@aws-sdk/client-codebuild';
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { PublishCommand } from '@aws-sdk/client-sns';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runIdentity } from '../../functions/lib/pipeline/run-id.ts';
import { runPipeline, S3_INPUT, SimulatedClock } from './harness.ts';
import {
  AwsWorld,
  BASE_IMAGE_ID,
  BUILDER_GROUP_ID,
  BUILDER_INSTANCE_ID,
  BUILDER_KEY_PAIR_ID,
  IMAGE_ID,
  INSTANCE_ID,
  PROFILE_BUCKET,
  PROFILE_KEY,
  SNAPSHOT_ID,
} from './world.ts';

let world: AwsWorld;

beforeEach(() => {
  world = new AwsWorld();
});

afterEach(() => {
  world.restore();
});

/** Whether the run published anything at all. */
function published(): boolean {
  return world.ssm.commandCalls(PutParameterCommand).length > 0;
}

function failureNotice(): string {
  const calls = world.sns.commandCalls(PublishCommand);
  expect(calls).toHaveLength(1);
  return `${calls[0]?.args[0].input.Subject}\n${calls[0]?.args[0].input.Message}`;
}

function count(path: readonly string[], state: string): number {
  return path.filter((name) => name === state).length;
}

describe('pipeline definition: the build wait loop', () => {
  it('keeps waiting while the build is IN_PROGRESS, then resolves the image', async () => {
    // Prepare
    world.buildLooks = [
      { status: 'IN_PROGRESS', phase: 'QUEUED' },
      { status: 'IN_PROGRESS', phase: 'PROVISIONING' },
      { status: 'IN_PROGRESS', phase: 'BUILD' },
      { status: 'SUCCEEDED', phase: 'COMPLETED' },
    ];
    world.imageLooks = [
      { State: 'failed', StateReason: { Message: 'stop here' } },
    ];

    // Act
    const run = await runPipeline();

    // Assess
    expect(count(run.path, 'CheckBuild')).toBe(4);
    expect(count(run.path, 'WaitForBuild')).toBe(4);
    expect(run.path).toContain('ResolveImage');
    expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(1);
  });

  it.each([
    ['FAILED', 'BUILD'],
    ['FAULT', 'POST_BUILD'],
  ])(
    'fails on %s in phase %s without launching anything',
    async (status, phase) => {
      world.buildLooks = [{ status, phase }];

      const run = await runPipeline();

      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('BuildFailedError');
      expect(run.cause).toContain(`${status} in phase ${phase}`);
      expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(1);
      expect(world.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
      expect(published()).toBe(false);
      expect(failureNotice()).toContain('SBC image build failed');
    },
  );

  it('starts the build again when it failed while still QUEUED', async () => {
    world.buildLooks = [
      { status: 'FAILED', phase: 'QUEUED' },
      { status: 'SUCCEEDED', phase: 'COMPLETED' },
    ];
    world.imageLooks = [{ State: 'failed' }];

    const run = await runPipeline();

    const starts = world.codebuild.commandCalls(StartBuildCommand);
    expect(starts.map((c) => c.args[0].input.idempotencyToken)).toEqual([
      run.runId,
      `${run.runId}-start-2`,
    ]);
    expect(run.path).toContain('ResolveImage');
  });

  it('gives up after three builds that failed in the queue', async () => {
    world.buildLooks = [{ status: 'FAULT', phase: 'PROVISIONING' }];

    const run = await runPipeline();

    expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(3);
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('BuildFailedError');
    expect(run.cause).toContain('3 times');
  });

  it.each(['TIMED_OUT', 'STOPPED'])(
    'fails on %s and sweeps what the builder left for the run',
    async (status) => {
      world.buildLooks = [{ status, phase: 'BUILD' }];
      world.builderLeftovers = true;

      const run = await runPipeline();

      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('BuildFailedError');
      expect(
        world.ec2.commandCalls(TerminateInstancesCommand)[0]?.args[0].input,
      ).toEqual({ InstanceIds: [BUILDER_INSTANCE_ID] });
      expect(
        world.ec2.commandCalls(DeleteKeyPairCommand)[0]?.args[0].input,
      ).toEqual({ KeyPairId: BUILDER_KEY_PAIR_ID });
      expect(
        world.ec2.commandCalls(DeleteSecurityGroupCommand)[0]?.args[0].input,
      ).toEqual({ GroupId: BUILDER_GROUP_ID });
      // The build has ended: nothing to stop.
      expect(world.codebuild.commandCalls(StopBuildCommand)).toHaveLength(0);
    },
  );

  it('fails closed on a status it does not know', async () => {
    world.buildLooks = [{ status: 'PAUSED', phase: 'BUILD' }];

    const run = await runPipeline();

    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('BuildStatusUnknownError');
    expect(world.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });

  it('fails when the build SUCCEEDED but wrote no manifest', async () => {
    world.manifest = 'none';

    const run = await runPipeline();

    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('ImageNotFoundError');
    expect(run.cause).toContain('wrote no Packer manifest');
  });

  it('stops the build and takes the failure path past the deadline', async () => {
    world.buildLooks = [{ status: 'IN_PROGRESS', phase: 'BUILD' }];

    const run = await runPipeline();

    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('WaitTimeoutError');
    expect(run.cause).toMatch(/IN_PROGRESS\/BUILD x\d+ over 12\d min/);
    expect(world.codebuild.commandCalls(StopBuildCommand)).toHaveLength(1);
    expect(failureNotice()).toContain('WaitTimeoutError');
  });

  it('takes the failure path when the loop reaches its attempt cap', async () => {
    world.buildLooks = [{ status: 'IN_PROGRESS', phase: 'BUILD' }];

    const run = await runPipeline({
      settings: (s) => ({
        ...s,
        build: { ...s.build, waitSeconds: 1, deadlineMinutes: 10_000 },
      }),
    });

    expect(run.status).toBe('FAILED');
    expect(run.path).toContain('BuildWaitExpired');
    expect(run.error).toBe('WaitTimeoutError');
    expect(count(run.path, 'CheckBuild')).toBe(120);
  });
});

describe('pipeline definition: StartBuild under throttling', () => {
  it('retries with the same idempotency token and starts exactly one build', async () => {
    world.startBuildRefusals = [
      'ThrottlingException',
      'AccountLimitExceededException',
      'ThrottlingException',
    ];
    world.imageLooks = [{ State: 'failed' }];

    const run = await runPipeline();

    const calls = world.codebuild.commandCalls(StartBuildCommand);
    expect(calls).toHaveLength(4);
    expect(new Set(calls.map((c) => c.args[0].input.idempotencyToken))).toEqual(
      new Set([run.runId]),
    );
    expect(world.builds).toHaveLength(1);
    expect(run.events.filter((e) => e.type === 'StateRetried')).toHaveLength(3);
  });
});

describe('pipeline definition: the image wait loop', () => {
  it('tolerates an image id not yet visible within the grace window', async () => {
    world.imageLooks = [
      'missing',
      'missing',
      { State: 'pending' },
      { State: 'failed' },
    ];

    const run = await runPipeline();

    expect(count(run.path, 'CheckImage')).toBe(4);
    expect(run.error).toBe('ImageFailedError');
  });

  it('fails when the image stays invisible past the grace window', async () => {
    world.imageLooks = ['missing'];

    const run = await runPipeline();

    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('ImageNotFoundError');
    expect(run.cause).toContain('still not visible after 300 s');
    // 0 s, then 60 s looks: 300 s of grace allows six.
    expect(count(run.path, 'CheckImage')).toBe(6);
  });

  it('stops at once when the image state is failed, with its reason', async () => {
    world.imageLooks = [
      { State: 'failed', StateReason: { Message: 'Client.InternalError' } },
    ];

    const run = await runPipeline();

    expect(count(run.path, 'CheckImage')).toBe(1);
    expect(run.error).toBe('ImageFailedError');
    expect(run.cause).toContain('Client.InternalError');
    // The failed image is still deregistered, then its snapshot deleted.
    expect(world.commandNames(world.ec2)).toEqual(
      expect.arrayContaining([
        'DeregisterImageCommand',
        'DeleteSnapshotCommand',
      ]),
    );
  });

  it('stops at once when a snapshot is in error', async () => {
    world.snapshotState = 'error';

    const run = await runPipeline();

    expect(count(run.path, 'CheckImage')).toBe(1);
    expect(run.error).toBe('ImageFailedError');
    expect(run.cause).toContain(`snapshot ${SNAPSHOT_ID}`);
  });

  it.each([
    [
      'not encrypted',
      {
        BlockDeviceMappings: [
          {
            DeviceName: '/dev/xvda',
            Ebs: { SnapshotId: SNAPSHOT_ID, Encrypted: false },
          },
        ],
      },
    ],
    ['does not require IMDSv2', { ImdsSupport: undefined }],
    ['is public', { Public: true }],
  ])(
    'refuses an image whose problem is "%s" before any test instance starts',
    async (reason, look) => {
      world.imageLooks = [{ State: 'available', ...look }];

      const run = await runPipeline();

      expect(run.error).toBe('ImagePolicyError');
      expect(run.cause).toContain(reason);
      expect(world.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
      expect(world.ec2.commandCalls(DeregisterImageCommand)).toHaveLength(1);
    },
  );
});

describe('pipeline definition: the Packer manifest', () => {
  it('takes only the entry of this run when older runs are listed', async () => {
    world.imageLooks = [{ State: 'failed' }];

    await runPipeline();

    const looked = world.ec2
      .commandCalls(DescribeImagesCommand)
      .flatMap((c) => c.args[0].input.ImageIds ?? []);
    expect(new Set(looked)).toEqual(new Set([IMAGE_ID]));
  });

  it('fails when the manifest has no entry for this run', async () => {
    world.manifest = [
      {
        runId: 'sbc-0lderrun00000000',
        imageId: 'ami-0old00000000000001',
        buildTime: 1,
      },
    ];

    const run = await runPipeline();

    expect(run.error).toBe('ImageNotFoundError');
    expect(run.cause).toMatch(/1 entries, none for run sbc-/);
    expect(world.ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
  });
});

describe('pipeline definition: the test instance', () => {
  it('launches with IMDSv2 required and the run tag, once per run', async () => {
    world.instanceLooks = [{ state: 'terminated', checks: 'not-applicable' }];

    const run = await runPipeline();

    const launch =
      world.ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input;
    expect(launch?.MetadataOptions?.HttpTokens).toBe('required');
    expect(launch?.ClientToken).toBe(run.runId);
    expect(launch?.ImageId).toBe(IMAGE_ID);
    expect(launch?.TagSpecifications?.[0]?.Tags).toContainEqual({
      Key: 'sbc-ami:run-id',
      Value: run.runId,
    });
    expect(run.error).toBe('TestInstanceError');
    // The instance is terminated on the failure path all the same.
    expect(
      world.ec2
        .commandCalls(TerminateInstancesCommand)
        .map((c) => c.args[0].input),
    ).toContainEqual({ InstanceIds: [INSTANCE_ID] });
  });

  it('fails past its deadline while the instance never becomes reachable', async () => {
    world.instanceLooks = [{ state: 'running', checks: 'initializing' }];

    const run = await runPipeline();

    expect(run.error).toBe('WaitTimeoutError');
    expect(run.cause).toContain(
      'running (system initializing, instance initializing)',
    );
  });
});

describe('pipeline definition: transient errors', () => {
  it('retries a throttled call in a Task and goes on', async () => {
    let refused = 0;
    world.ec2.on(RunInstancesCommand).callsFake(() => {
      refused += 1;
      if (refused === 1) {
        throw Object.assign(new Error('Rate exceeded'), {
          name: 'RequestLimitExceeded',
        });
      }
      return { Instances: [{ InstanceId: INSTANCE_ID }] };
    });
    world.instanceLooks = [{ state: 'terminated', checks: 'not-applicable' }];

    const run = await runPipeline();

    expect(world.ec2.commandCalls(RunInstancesCommand)).toHaveLength(2);
    expect(
      run.events.filter((e) => e.type === 'StateRetried').map((e) => e.state),
    ).toEqual(['LaunchTestInstance']);
    expect(run.error).toBe('TestInstanceError');
  });

  it('rejects a bad trigger at Prepare, notifies, and starts no build', async () => {
    const run = await runPipeline({
      input: {
        trigger: { source: 's3', extra: true },
        profile: { bucket: PROFILE_BUCKET, key: PROFILE_KEY, versionId: 'v' },
      },
    });

    expect(run.status).toBe('FAILED');
    expect(run.path).toEqual(['Prepare', 'NotifyRejected', 'Rejected']);
    expect(run.error).toBe('InvalidInputError');
    expect(run.cause).toContain('trigger');
    expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
  });

  it('rejects a profile that fails validation, naming the field', async () => {
    world.objects.set(
      `${PROFILE_BUCKET}/${PROFILE_KEY}`,
      JSON.stringify({ name: 'x', sbc: { fqdn: 'not a name' } }),
    );

    const run = await runPipeline();

    expect(run.path.at(-1)).toBe('Rejected');
    expect(run.cause).toContain('sbc.fqdn');
    expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
  });
});

describe('pipeline definition: the base image', () => {
  it.each([
    [
      'owned by another account',
      { OwnerId: '999999999999', Name: 'debian-12-amd64-20261120-1' },
      'is owned by 999999999999',
    ],
    [
      'named outside the allowed pattern',
      { OwnerId: '136693071363', Name: 'debian-11-amd64-20261120-1' },
      'matches none of debian-12-amd64-*',
    ],
  ])(
    'refuses a base image %s before any build',
    async (_label, image, reason) => {
      world.baseImages = [
        {
          ImageId: 'ami-0imposter0000001',
          State: 'available',
          CreationDate: '2026-11-30T00:00:00.000Z',
          ...image,
        },
      ];

      const run = await runPipeline();

      expect(run.path).toEqual(['Prepare', 'NotifyRejected', 'Rejected']);
      expect(run.error).toBe('BaseImageRejectedError');
      expect(run.cause).toContain(reason);
      expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
    },
  );

  it('refuses to build when no allowed base image is available', async () => {
    world.baseImages = [];

    const run = await runPipeline();

    expect(run.error).toBe('BaseImageRejectedError');
    expect(run.cause).toContain(
      'no available base image of owner 136693071363',
    );
    expect(world.codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
  });

  it('builds from the newest allowed base image', async () => {
    world.imageLooks = [{ State: 'failed' }];

    await runPipeline();

    const start =
      world.codebuild.commandCalls(StartBuildCommand)[0]?.args[0].input;
    expect(start?.environmentVariablesOverride).toContainEqual({
      name: 'BASE_IMAGE_ID',
      value: BASE_IMAGE_ID,
      type: 'PLAINTEXT',
    });
  });
});

describe('runIdentity', () => {
  it('gives the same run id and execution name for the same S3 object version', () => {
    const first = runIdentity(S3_INPUT);
    const again = runIdentity(structuredClone(S3_INPUT));
    const other = runIdentity({
      ...S3_INPUT,
      profile: { ...S3_INPUT.profile, versionId: 'another' },
    });

    expect(again).toEqual(first);
    expect(other.runId).not.toBe(first.runId);
    expect(first.executionName).toMatch(/^genesys-byoc-s3-[0-9a-f]{16}$/);
  });

  it('gives the same run id for the same schedule time, another for the next', () => {
    const at = (time: string) =>
      runIdentity({
        trigger: { source: 'schedule', time },
        profile: { bucket: PROFILE_BUCKET, key: PROFILE_KEY },
      });

    expect(at('2026-12-07T03:00:00Z')).toEqual(at('2026-12-07T03:00:00Z'));
    expect(at('2026-12-14T03:00:00Z').runId).not.toBe(
      at('2026-12-07T03:00:00Z').runId,
    );
  });

  it('names every execution within the Step Functions limits', () => {
    const identity = runIdentity({
      trigger: { source: 'manual', nonce: 'n' },
      profile: { key: `profiles/${'Ünïcode trunk '.repeat(20)}.json` },
    });

    expect(identity.executionName.length).toBeLessThanOrEqual(80);
    expect(identity.executionName).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('is the run id the build is started with', async () => {
    world.imageLooks = [{ State: 'failed' }];

    const first = await runPipeline();
    const second = await runPipeline({ clock: new SimulatedClock() });

    const tokens = world.codebuild
      .commandCalls(StartBuildCommand)
      .map((c) => c.args[0].input.idempotencyToken);
    expect(tokens).toEqual([first.runId, second.runId]);
    expect(first.runId).toBe(runIdentity(S3_INPUT).runId);
  });
});

describe('pipeline definition: the deleted image', () => {
  it('deregisters the failed image before deleting its snapshot', async () => {
    world.imageLooks = [{ State: 'failed' }];

    await runPipeline();

    const names = world.commandNames(world.ec2);
    const deregister = names.indexOf('DeregisterImageCommand');
    const deleteSnapshot = names.indexOf('DeleteSnapshotCommand');
    expect(deregister).toBeGreaterThanOrEqual(0);
    expect(deleteSnapshot).toBeGreaterThan(deregister);
    expect(
      world.ec2.commandCalls(DeleteSnapshotCommand)[0]?.args[0].input,
    ).toEqual({ SnapshotId: SNAPSHOT_ID });
  });
});
