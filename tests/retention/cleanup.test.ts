import {
  BatchGetBuildsCommand,
  ListBuildsForProjectCommand,
} from '@aws-sdk/client-codebuild';
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  type Image,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
} from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_RUN_ID,
} from '../../functions/lib/constants.ts';
import {
  type CleanupReport,
  formatCleanupTable,
  PaginationLoopError,
  runCleanup,
  summarizeCleanup,
} from '../../functions/lib/retention/index.ts';
import {
  type AwsMocks,
  awsDeps,
  awsError,
  ec2Image,
  hoursAgo,
  MUTATING,
  mockAws,
  NOW,
  POLICY,
  pages,
  sentTo,
} from './fixtures.ts';

/**
 * The account of these tests: two images kept by references, one published,
 * three to delete (oldest first: del1, del2, del3), one image of another
 * tool, and an orphan snapshot of the pipeline.
 */
const IMAGES: Image[] = [
  ec2Image('ami-pub', { validated: true, createdAt: hoursAgo(24 * 40) }),
  ec2Image('ami-lt', { createdAt: hoursAgo(24 * 60) }),
  ec2Image('ami-inst', { createdAt: hoursAgo(24 * 60) }),
  ec2Image('ami-del1', {
    createdAt: hoursAgo(24 * 90),
    snapshots: ['snap-d1a', 'snap-d1b'],
    ephemeral: true,
  }),
  ec2Image('ami-del2', { createdAt: hoursAgo(24 * 80), state: 'failed' }),
  ec2Image('ami-del3', { createdAt: hoursAgo(24 * 70), runId: 'run-3' }),
  ec2Image('ami-foreign', { managed: false, createdAt: hoursAgo(24 * 99) }),
];

function serveAccount(mocks: AwsMocks, images: Image[] = IMAGES): void {
  // An empty first page with a token, then two images a page.
  const listing = pages(images, 2, 1);
  mocks.ec2.on(DescribeImagesCommand).callsFake((input) => {
    const page = listing((input as { NextToken?: string }).NextToken);
    return { Images: page.items, NextToken: page.next };
  });
  mocks.ec2.on(DescribeLaunchTemplatesCommand).resolves({
    LaunchTemplates: [{ LaunchTemplateId: 'lt-1', LaunchTemplateName: 'sbc' }],
  });
  mocks.ec2.on(DescribeLaunchTemplateVersionsCommand).resolves({
    LaunchTemplateVersions: [
      {
        LaunchTemplateId: 'lt-1',
        VersionNumber: 1,
        LaunchTemplateData: { ImageId: 'ami-lt' },
      },
      {
        LaunchTemplateId: 'lt-1',
        VersionNumber: 2,
        DefaultVersion: true,
        LaunchTemplateData: { ImageId: 'ami-pub' },
      },
    ],
  });
  mocks.ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: [
          {
            InstanceId: 'i-9',
            ImageId: 'ami-inst',
            State: { Name: 'stopped' },
          },
        ],
      },
    ],
  });
  mocks.ec2.on(DescribeSnapshotsCommand).resolves({
    Snapshots: [
      {
        SnapshotId: 'snap-orphan',
        StartTime: new Date(hoursAgo(24 * 100)),
        Tags: [{ Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE }],
      },
    ],
  });
  mocks.ssm
    .on(GetParametersByPathCommand)
    .resolves({ Parameters: [{ Name: '/sbc-ami/edge/image-id' }] });
  mocks.ssm
    .on(GetParameterHistoryCommand)
    .resolves({ Parameters: [{ Version: 1, Value: 'ami-pub' }] });
  mocks.ec2.on(DeregisterImageCommand).resolves({});
  mocks.ec2.on(DeleteSnapshotCommand).resolves({});
}

function mutationsSent(mocks: AwsMocks): string[] {
  return [mocks.ec2, mocks.autoScaling, mocks.ssm, mocks.codeBuild]
    .flatMap((mock) => sentTo(mock))
    .filter((call) => MUTATING.includes(call.command))
    .map((call) => {
      const input = call.input;
      const id =
        input.ImageId ?? input.SnapshotId ?? input.GroupId ?? input.KeyPairId;
      return `${call.command} ${String(id ?? input.InstanceIds)}`;
    });
}

function actions(report: CleanupReport): Record<string, string> {
  return Object.fromEntries(report.decisions.map((d) => [d.id, d.action]));
}

describe('runCleanup', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
    serveAccount(mocks);
  });
  afterEach(() => {
    mocks.restore();
  });

  it('deletes nothing in a dry run and explains every candidate', async () => {
    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: true,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(mutationsSent(mocks)).toEqual([]);
    expect(report.deleted).toEqual([]);
    expect(actions(report)).toEqual({
      'ami-pub': 'keep',
      'ami-lt': 'keep',
      'ami-inst': 'keep',
      'ami-del3': 'delete',
      'ami-del2': 'delete',
      'ami-del1': 'delete',
      'snap-orphan': 'delete',
    });
    const table = formatCleanupTable(report);
    expect(table).toContain(
      'current published value of /sbc-ami/edge/image-id',
    );
    expect(table).toContain('lt-1 (sbc) version 1');
    expect(table).toContain('i-9 (stopped)');
    expect(table).toMatch(/│ ami-del1 +│.*│ delete +│/);
    expect(table).toContain('dry run, nothing was deleted');
  });

  it('deregisters each image before deleting exactly its snapshots', async () => {
    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(mutationsSent(mocks)).toEqual([
      'DeregisterImage ami-del1',
      'DeleteSnapshot snap-d1a',
      'DeleteSnapshot snap-d1b',
      'DeregisterImage ami-del2',
      'DeleteSnapshot snap-del2',
      'DeregisterImage ami-del3',
      'DeleteSnapshot snap-del3',
      'DeleteSnapshot snap-orphan',
    ]);
    expect(report.failed).toEqual([]);
    expect(report.deleted).toHaveLength(8);
    expect(report.apiCalls).toMatchObject({
      DescribeImages: 5,
      DeregisterImage: 3,
      DeleteSnapshot: 5,
    });
  });

  it('stops at the deletion cap, oldest first', async () => {
    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: { ...POLICY, maxDeletes: 2 },
      now: NOW,
    });

    // Assess
    expect(mutationsSent(mocks)).toEqual([
      'DeregisterImage ami-del1',
      'DeleteSnapshot snap-d1a',
      'DeleteSnapshot snap-d1b',
      'DeregisterImage ami-del2',
      'DeleteSnapshot snap-del2',
    ]);
    const deferred = report.decisions.filter((d) =>
      d.reasons.some((r) => r.code === 'deletion-cap'),
    );
    expect(deferred.map((d) => [d.id, d.action])).toEqual([
      ['ami-del3', 'keep'],
      ['snap-orphan', 'keep'],
    ]);
  });

  it('reports one failure and goes on with the others', async () => {
    // Prepare
    mocks.ec2
      .on(DeregisterImageCommand, { ImageId: 'ami-del2' })
      .rejects(awsError('UnauthorizedOperation', 'not allowed'));

    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.failed).toEqual([
      {
        id: 'ami-del2',
        reason: 'deregister failed: UnauthorizedOperation: not allowed',
      },
    ]);
    expect(mutationsSent(mocks)).toEqual([
      'DeregisterImage ami-del1',
      'DeleteSnapshot snap-d1a',
      'DeleteSnapshot snap-d1b',
      'DeregisterImage ami-del2',
      'DeregisterImage ami-del3',
      'DeleteSnapshot snap-del3',
      'DeleteSnapshot snap-orphan',
    ]);
    expect(summarizeCleanup(report)).toMatchObject({ deleted: 6, failed: 1 });
  });

  it('retries a snapshot still in use after its image is deregistered', async () => {
    // Prepare
    mocks.ec2
      .on(DeleteSnapshotCommand, { SnapshotId: 'snap-del3' })
      .rejectsOnce(awsError('InvalidSnapshot.InUse'))
      .resolves({});

    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.failed).toEqual([]);
    expect(mutationsSent(mocks).filter((m) => m.endsWith('snap-del3'))).toEqual(
      ['DeleteSnapshot snap-del3', 'DeleteSnapshot snap-del3'],
    );
  });

  it('counts images and snapshots already gone as done on a re-run', async () => {
    // Prepare: a first run deleted everything; the listing still lags.
    await runCleanup(awsDeps(), { dryRun: false, policy: POLICY, now: NOW });
    mocks.ec2
      .on(DeregisterImageCommand)
      .rejects(awsError('InvalidAMIID.NotFound'));
    mocks.ec2
      .on(DeleteSnapshotCommand)
      .rejects(awsError('InvalidSnapshot.NotFound'));

    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.failed).toEqual([]);
    expect(report.alreadyGone).toHaveLength(8);
    expect([...report.deleted].sort()).toEqual(
      [
        'ami-del1',
        'ami-del2',
        'ami-del3',
        'snap-d1a',
        'snap-d1b',
        'snap-del2',
        'snap-del3',
        'snap-orphan',
      ].sort(),
    );
  });

  it('keeps an image whose build is still running', async () => {
    // Prepare
    mocks.codeBuild.on(ListBuildsForProjectCommand).resolves({ ids: ['b:1'] });
    mocks.codeBuild.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: 'b:1',
          buildComplete: false,
          environment: {
            type: 'LINUX_CONTAINER',
            image: 'x',
            computeType: 'BUILD_GENERAL1_SMALL',
            environmentVariables: [{ name: 'RUN_ID', value: 'run-3' }],
          },
        },
      ],
    });

    // Act
    const report = await runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    const kept = report.decisions.find((d) => d.id === 'ami-del3');
    expect(kept?.action).toBe('keep');
    expect(kept?.reasons.map((r) => r.code)).toEqual(['build-running']);
    expect(mocks.ec2.commandCalls(DeregisterImageCommand)).toHaveLength(2);
  });

  it('deletes nothing when a listing repeats a page token', async () => {
    // Prepare
    mocks.ec2
      .on(DescribeSnapshotsCommand)
      .resolves({ Snapshots: [], NextToken: 'again' });

    // Act
    const run = runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    await expect(run).rejects.toThrow(PaginationLoopError);
    expect(mutationsSent(mocks)).toEqual([]);
  });

  it('refuses a policy out of range before listing anything', async () => {
    const run = runCleanup(awsDeps(), {
      dryRun: false,
      policy: { ...POLICY, inUseRetries: -1 },
      now: NOW,
    });

    await expect(run).rejects.toThrow(/inUseRetries/);
    expect(mocks.ec2.calls()).toHaveLength(0);
  });

  it('deletes nothing when any listing fails', async () => {
    mocks.ec2
      .on(DescribeInstancesCommand)
      .rejects(awsError('UnauthorizedOperation'));

    const run = runCleanup(awsDeps(), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    await expect(run).rejects.toThrow('UnauthorizedOperation');
    expect(mutationsSent(mocks)).toEqual([]);
  });

  describe('builder leftovers', () => {
    beforeEach(() => {
      const tags = (runId: string) => [
        { Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE },
        { Key: TAG_RUN_ID, Value: runId },
      ];
      mocks.ec2
        .on(DescribeInstancesCommand, {
          Filters: [{ Name: 'instance-state-name' }],
        })
        .resolves({ Reservations: [] });
      mocks.ec2
        .on(DescribeInstancesCommand)
        .callsFake((input: { Filters?: { Name?: string }[] }) => {
          const leftovers = input.Filters?.some((f) => f.Name === 'tag-key');
          return leftovers
            ? {
                Reservations: [
                  {
                    Instances: [
                      {
                        InstanceId: 'i-old',
                        LaunchTime: new Date(hoursAgo(12)),
                        Tags: tags('run-old'),
                      },
                      {
                        InstanceId: 'i-new',
                        LaunchTime: new Date(hoursAgo(1)),
                        Tags: tags('run-new'),
                      },
                    ],
                  },
                ],
              }
            : { Reservations: [] };
        });
      mocks.ec2.on(DescribeKeyPairsCommand).resolves({
        KeyPairs: [
          {
            KeyPairId: 'key-old',
            CreateTime: new Date(hoursAgo(12)),
            Tags: tags('run-old'),
          },
        ],
      });
      mocks.ec2.on(TerminateInstancesCommand).resolves({});
      mocks.ec2.on(DeleteKeyPairCommand).resolves({});
      mocks.ec2.on(DeleteSecurityGroupCommand).resolves({});
    });

    it('removes exactly the stale run’s leftovers and keeps the recent one', async () => {
      // Act
      const report = await runCleanup(awsDeps(), {
        dryRun: false,
        policy: { ...POLICY, maxDeletes: 0 },
        now: NOW,
      });

      // Assess
      expect(mutationsSent(mocks)).toEqual([
        'TerminateInstances i-old',
        'DeleteKeyPair key-old',
      ]);
      expect(report.leftovers).toEqual({
        removed: ['i-old', 'key-old'],
        leftBehind: [],
      });
      expect(actions(report)).toMatchObject({
        'i-old': 'delete',
        'key-old': 'delete',
        'i-new': 'keep',
      });
    });

    it('lists leftovers but removes none in a dry run', async () => {
      const report = await runCleanup(awsDeps(), {
        dryRun: true,
        policy: POLICY,
        now: NOW,
      });

      expect(mutationsSent(mocks)).toEqual([]);
      expect(actions(report)['i-old']).toBe('delete');
    });
  });
});
