import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetParameterHistoryCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ec2ImageStore } from '../../functions/lib/aws/image-store.ts';
import { SsmPublisher } from '../../functions/lib/aws/publisher.ts';
import { TAG_RUN_ID } from '../../functions/lib/constants.ts';
import { ThrottledError } from '../../functions/lib/errors.ts';
import { LocalRegistryPublisher } from '../../functions/lib/local/publisher.ts';
import {
  type DiscardDeps,
  discardRunImage,
} from '../../functions/lib/pipeline/rollback.ts';

const IMAGE = 'ami-0run00000000000001';
const OTHER = 'ami-0other0000000000001';
const SNAPSHOT = 'snap-0run0000000000001';
const TEMPLATE = 'lt-0aaaaaaaaaaaaaaa1';
const RUN = 'sbc-run-1';

const INPUT = {
  runId: RUN,
  execution: 'exec-1',
  imageId: IMAGE,
  snapshotIds: [SNAPSHOT],
  profileName: 'trunk',
};

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);

function awsError(name: string): Error {
  return Object.assign(new Error(`${name} (simulated)`), { name });
}

function awsDeps(): DiscardDeps {
  const ec2Client = new EC2Client({});
  return {
    images: new Ec2ImageStore(ec2Client),
    publisher: new SsmPublisher(new SSMClient({}), ec2Client, {
      parameterPrefix: '/sbc-ami',
      launchTemplateIds: [TEMPLATE],
      setDefaultVersion: true,
      readBackRetries: 0,
    }),
  };
}

beforeEach(() => {
  ssm.on(GetParameterHistoryCommand).resolves({
    Parameters: [{ Value: IMAGE }, { Value: OTHER }],
  });
  ec2
    .on(DescribeLaunchTemplateVersionsCommand)
    .resolves({ LaunchTemplateVersions: [] });
  ec2.on(DescribeImagesCommand).resolves({
    Images: [
      {
        ImageId: IMAGE,
        State: 'available',
        Tags: [{ Key: TAG_RUN_ID, Value: RUN }],
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { SnapshotId: SNAPSHOT } },
        ],
      },
    ],
  });
  ec2.on(DeregisterImageCommand).resolves({});
  ec2.on(DeleteSnapshotCommand).resolves({});
});

afterEach(() => {
  ssm.reset();
  ec2.reset();
});

describe('discardRunImage', () => {
  it('deregisters the image and its snapshot when nothing uses it', async () => {
    // Act
    const report = await discardRunImage(INPUT, awsDeps());

    // Assess: the profile's parameter and the template were both asked.
    expect(
      ssm.commandCalls(GetParameterHistoryCommand)[0]?.args[0].input,
    ).toEqual({ Name: '/sbc-ami/trunk/image-id' });
    expect(
      ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)[0]?.args[0].input,
    ).toEqual({
      LaunchTemplateId: TEMPLATE,
      Filters: [{ Name: 'image-id', Values: [IMAGE] }],
    });
    expect(
      ec2.commandCalls(DeregisterImageCommand)[0]?.args[0].input,
    ).toMatchObject({ ImageId: IMAGE });
    expect(report).toEqual({ removed: [IMAGE, SNAPSHOT], leftBehind: [] });
  });

  it('keeps the image that is the current published value', async () => {
    // Prepare: history is oldest first; the last value is current.
    ssm.on(GetParameterHistoryCommand).resolves({
      Parameters: [{ Value: OTHER }, { Value: IMAGE }],
    });

    // Act
    const report = await discardRunImage(INPUT, awsDeps());

    // Assess
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
    expect(report).toEqual({
      removed: [],
      leftBehind: [
        `${IMAGE} and its snapshots ${SNAPSHOT} kept, still in use: the ` +
          'published value of profile trunk; point these at another ' +
          'image, then deregister it by hand',
      ],
    });
  });

  it('keeps the image a launch template version names', async () => {
    // Prepare
    ec2.on(DescribeLaunchTemplateVersionsCommand).resolves({
      LaunchTemplateVersions: [{ VersionNumber: 7, DefaultVersion: true }],
    });

    // Act
    const report = await discardRunImage(INPUT, awsDeps());

    // Assess
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(report.leftBehind[0]).toContain(
      `still in use: launch template ${TEMPLATE} version 7 (default)`,
    );
  });

  it('keeps the image when it cannot tell whether it is published', async () => {
    // Prepare
    ssm
      .on(GetParameterHistoryCommand)
      .rejects(awsError('AccessDeniedException'));

    // Act
    const report = await discardRunImage(INPUT, awsDeps());

    // Assess
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(report.leftBehind[0]).toContain(
      'cannot tell whether it is the published value of trunk ' +
        '(AccessDeniedException: AccessDeniedException (simulated))',
    );
  });

  it('throws ThrottledError when a check is throttled, so the state retries', async () => {
    // Prepare
    ec2
      .on(DescribeLaunchTemplateVersionsCommand)
      .rejects(awsError('RequestLimitExceeded'));

    // Act
    const result = discardRunImage(INPUT, awsDeps());

    // Assess
    await expect(result).rejects.toBeInstanceOf(ThrottledError);
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
  });

  it('checks nothing when the run made no image', async () => {
    // Act
    const report = await discardRunImage(
      { ...INPUT, imageId: null, snapshotIds: [] },
      awsDeps(),
    );

    // Assess
    expect(report).toEqual({ removed: [], leftBehind: [] });
    expect(ssm.calls()).toHaveLength(0);
    expect(ec2.calls()).toHaveLength(0);
  });

  describe('with the local registry as publisher', () => {
    let dir: string;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sbc-discard-'));
    });

    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('keeps the image the registry publishes, and asks no template', async () => {
      // Prepare
      const publisher = new LocalRegistryPublisher(join(dir, 'registry.json'));
      await publisher.publish({
        runId: RUN,
        imageId: IMAGE,
        profileName: 'trunk',
        description: 'trunk run 1',
      });

      // Act
      const report = await discardRunImage(INPUT, {
        images: awsDeps().images,
        publisher,
      });

      // Assess
      expect(report.leftBehind[0]).toContain(
        'still in use: the published value of profile trunk',
      );
      expect(ec2.calls()).toHaveLength(0);
    });
  });
});
