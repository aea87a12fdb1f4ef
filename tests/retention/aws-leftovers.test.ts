import {
  BatchGetBuildsCommand,
  type Build,
  CodeBuildClient,
  ListBuildsForProjectCommand,
} from '@aws-sdk/client-codebuild';
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_RUN_ID,
} from '../../functions/lib/constants.ts';
import {
  CodeBuildRunLookup,
  Ec2LeftoverSweeper,
} from '../../functions/lib/retention/index.ts';
import {
  type AwsMocks,
  awsError,
  hoursAgo,
  mockAws,
  NOW,
  sentTo,
} from './fixtures.ts';

function tags(runId: string) {
  return [
    { Key: TAG_MANAGED_BY, Value: MANAGED_BY_VALUE },
    { Key: TAG_RUN_ID, Value: runId },
  ];
}

function sweeper(): Ec2LeftoverSweeper {
  return new Ec2LeftoverSweeper({
    ec2: new EC2Client({ region: 'eu-west-1' }),
    securityGroupRetries: 3,
    retryDelayMs: 1,
    maxRetryDelayMs: 1,
  });
}

/** One leftover of each kind for run-1. */
function serveRun(mocks: AwsMocks): void {
  mocks.ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: [
          {
            InstanceId: 'i-1',
            LaunchTime: new Date(hoursAgo(10)),
            Tags: tags('run-1'),
          },
        ],
      },
    ],
  });
  mocks.ec2.on(DescribeKeyPairsCommand).resolves({
    KeyPairs: [
      {
        KeyPairId: 'key-1',
        KeyName: 'packer_1',
        CreateTime: new Date(hoursAgo(10)),
        Tags: tags('run-1'),
      },
    ],
  });
  mocks.ec2.on(DescribeSecurityGroupsCommand).resolves({
    SecurityGroups: [
      { GroupId: 'sg-1', GroupName: 'packer_1', Tags: tags('run-1') },
    ],
  });
  mocks.ec2.on(TerminateInstancesCommand).resolves({});
  mocks.ec2.on(DeleteKeyPairCommand).resolves({});
  mocks.ec2.on(DeleteSecurityGroupCommand).resolves({});
}

describe('Ec2LeftoverSweeper', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
  });
  afterEach(() => {
    mocks.restore();
  });

  describe('listLeftovers', () => {
    it('lists only resources with both the pipeline tag and a run id', async () => {
      // Prepare
      serveRun(mocks);

      // Act
      const leftovers = await sweeper().listLeftovers();

      // Assess
      expect(leftovers).toEqual([
        {
          kind: 'instance',
          id: 'i-1',
          runId: 'run-1',
          createdAt: hoursAgo(10),
          name: undefined,
        },
        {
          kind: 'key-pair',
          id: 'key-1',
          runId: 'run-1',
          createdAt: hoursAgo(10),
          name: 'packer_1',
        },
        {
          kind: 'security-group',
          id: 'sg-1',
          runId: 'run-1',
          name: 'packer_1',
        },
      ]);
      const expected = [
        { Name: `tag:${TAG_MANAGED_BY}`, Values: [MANAGED_BY_VALUE] },
        { Name: 'tag-key', Values: [TAG_RUN_ID] },
      ];
      for (const command of [
        DescribeKeyPairsCommand,
        DescribeSecurityGroupsCommand,
      ] as const) {
        const [call] = mocks.ec2.commandCalls(command);
        expect(call?.args[0].input.Filters).toEqual(expected);
      }
      const [instances] = mocks.ec2.commandCalls(DescribeInstancesCommand);
      expect(instances?.args[0].input.Filters).toEqual([
        ...expected,
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
    });
  });

  describe('sweep', () => {
    it('terminates instances, then deletes key pairs, then security groups', async () => {
      // Prepare
      serveRun(mocks);

      // Act
      const report = await sweeper().sweep('run-1');

      // Assess
      const changes = sentTo(mocks.ec2)
        .filter((call) => !call.command.startsWith('Describe'))
        .map((call) => [call.command, call.input]);
      expect(changes).toEqual([
        ['TerminateInstances', { InstanceIds: ['i-1'] }],
        ['DeleteKeyPair', { KeyPairId: 'key-1' }],
        ['DeleteSecurityGroup', { GroupId: 'sg-1' }],
      ]);
      const [listing] = mocks.ec2.commandCalls(DescribeSecurityGroupsCommand);
      expect(listing?.args[0].input.Filters).toContainEqual({
        Name: `tag:${TAG_RUN_ID}`,
        Values: ['run-1'],
      });
      expect(report).toEqual({
        removed: ['i-1', 'key-1', 'sg-1'],
        leftBehind: [],
        errors: [],
      });
    });

    it('retries a security group until its network interfaces are gone', async () => {
      // Prepare
      serveRun(mocks);
      mocks.ec2
        .on(DeleteSecurityGroupCommand)
        .rejectsOnce(awsError('DependencyViolation'))
        .rejectsOnce(awsError('DependencyViolation'))
        .resolves({});

      // Act
      const report = await sweeper().sweep('run-1');

      // Assess
      expect(mocks.ec2.commandCalls(DeleteSecurityGroupCommand)).toHaveLength(
        3,
      );
      expect(report.leftBehind).toEqual([]);
    });

    it('names what it could not remove and goes on with the rest', async () => {
      // Prepare
      serveRun(mocks);
      mocks.ec2
        .on(TerminateInstancesCommand)
        .rejects(awsError('OperationNotPermitted', 'termination protection'));
      mocks.ec2
        .on(DeleteSecurityGroupCommand)
        .rejects(awsError('DependencyViolation'));

      // Act
      const report = await sweeper().sweep('run-1');

      // Assess
      expect(report.removed).toEqual(['key-1']);
      expect(report.leftBehind).toEqual(['i-1', 'sg-1']);
      expect(report.errors.map((e) => e.reason)).toEqual([
        'instance not removed: OperationNotPermitted: termination protection',
        'security-group not removed: DependencyViolation: DependencyViolation',
      ]);
      expect(mocks.ec2.commandCalls(DeleteSecurityGroupCommand)).toHaveLength(
        4,
      );
    });

    it('counts resources already gone as removed', async () => {
      serveRun(mocks);
      mocks.ec2
        .on(TerminateInstancesCommand)
        .rejects(awsError('InvalidInstanceID.NotFound'));
      mocks.ec2
        .on(DeleteSecurityGroupCommand)
        .rejects(awsError('InvalidGroup.NotFound'));

      const report = await sweeper().sweep('run-1');

      expect(report.removed).toEqual(['i-1', 'key-1', 'sg-1']);
      expect(report.leftBehind).toEqual([]);
    });

    it('never throws when listing fails', async () => {
      mocks.ec2
        .on(DescribeKeyPairsCommand)
        .rejects(awsError('UnauthorizedOperation'));

      const report = await sweeper().sweep('run-1');

      expect(report.leftBehind).toEqual(['run run-1']);
      expect(mocks.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
    });
  });
});

describe('CodeBuildRunLookup', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
  });
  afterEach(() => {
    mocks.restore();
  });

  function build(
    id: string,
    runId: string | undefined,
    spec: Partial<Build>,
  ): Build {
    return {
      id,
      environment: {
        type: 'LINUX_CONTAINER',
        image: 'aws/codebuild/standard:7.0',
        computeType: 'BUILD_GENERAL1_SMALL',
        environmentVariables:
          runId === undefined ? [] : [{ name: 'RUN_ID', value: runId }],
      },
      ...spec,
    };
  }

  function lookup(): CodeBuildRunLookup {
    return new CodeBuildRunLookup({
      codeBuild: new CodeBuildClient({ region: 'eu-west-1' }),
      projectName: 'sbc-ami-build',
      now: () => NOW,
    });
  }

  it('answers from running builds, listed once for every question', async () => {
    // Prepare
    mocks.codeBuild
      .on(ListBuildsForProjectCommand)
      .resolves({ ids: ['b:2', 'b:1'] });
    mocks.codeBuild.on(BatchGetBuildsCommand).resolves({
      builds: [
        build('b:2', 'run-new', {
          buildComplete: false,
          startTime: new Date(hoursAgo(1)),
        }),
        build('b:1', 'run-old', {
          buildComplete: true,
          startTime: new Date(hoursAgo(5)),
        }),
      ],
    });
    const runs = lookup();

    // Act
    const answers = [
      await runs.isBuildRunning('run-new'),
      await runs.isBuildRunning('run-old'),
      await runs.isBuildRunning('run-none'),
    ];

    // Assess
    expect(answers).toEqual([true, false, false]);
    expect(
      mocks.codeBuild.commandCalls(ListBuildsForProjectCommand),
    ).toHaveLength(1);
    const [list] = mocks.codeBuild.commandCalls(ListBuildsForProjectCommand);
    expect(list?.args[0].input).toMatchObject({
      projectName: 'sbc-ami-build',
      sortOrder: 'DESCENDING',
    });
    const [batch] = mocks.codeBuild.commandCalls(BatchGetBuildsCommand);
    expect(batch?.args[0].input).toEqual({ ids: ['b:2', 'b:1'] });
  });

  it('stops listing once a whole page is older than any build can run', async () => {
    // Prepare
    mocks.codeBuild
      .on(ListBuildsForProjectCommand)
      .resolves({ ids: ['b:1'], nextToken: 'more' });
    mocks.codeBuild.on(BatchGetBuildsCommand).resolves({
      builds: [
        build('b:1', 'run-1', {
          buildComplete: true,
          startTime: new Date(hoursAgo(50)),
        }),
      ],
    });

    // Act
    const running = await lookup().isBuildRunning('run-1');

    // Assess
    expect(running).toBe(false);
    expect(
      mocks.codeBuild.commandCalls(ListBuildsForProjectCommand),
    ).toHaveLength(1);
  });

  it('takes every run as running when a running build has no run id', async () => {
    mocks.codeBuild.on(ListBuildsForProjectCommand).resolves({ ids: ['b:9'] });
    mocks.codeBuild.on(BatchGetBuildsCommand).resolves({
      builds: [build('b:9', undefined, { buildComplete: false })],
    });

    expect(await lookup().isBuildRunning('run-anything')).toBe(true);
  });
});
