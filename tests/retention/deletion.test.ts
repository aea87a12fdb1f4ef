import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ec2ImageStore } from '../../functions/lib/aws/image-store.ts';
import {
  deleteImageAndSnapshots,
  discardImage,
} from '../../functions/lib/retention/index.ts';
import {
  type AwsMocks,
  awsError,
  ec2Image,
  mockAws,
  sentTo,
} from './fixtures.ts';

const FAST = { retryDelayMs: 1, maxRetryDelayMs: 1, inUseRetries: 3 };

function store(): Ec2ImageStore {
  return new Ec2ImageStore(new EC2Client({ region: 'eu-west-1' }));
}

function mutations(mocks: AwsMocks): string[] {
  return sentTo(mocks.ec2)
    .filter((call) => !call.command.startsWith('Describe'))
    .map((call) => {
      const id = call.input.ImageId ?? call.input.SnapshotId;
      return `${call.command} ${String(id)}`;
    });
}

describe('deleteImageAndSnapshots', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
    mocks.ec2.on(DeregisterImageCommand).resolves({});
    mocks.ec2.on(DeleteSnapshotCommand).resolves({});
  });
  afterEach(() => {
    mocks.restore();
  });

  it('deregisters first, then deletes exactly the given snapshots', async () => {
    // Act
    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a', 'snap-b'],
      FAST,
    );

    // Assess
    expect(mutations(mocks)).toEqual([
      'DeregisterImage ami-1',
      'DeleteSnapshot snap-a',
      'DeleteSnapshot snap-b',
    ]);
    expect(result).toEqual({
      removed: ['ami-1', 'snap-a', 'snap-b'],
      alreadyGone: [],
      leftBehind: [],
      errors: [],
    });
  });

  it('retries a snapshot reported in use, then succeeds', async () => {
    // Prepare
    mocks.ec2
      .on(DeleteSnapshotCommand)
      .rejectsOnce(awsError('InvalidSnapshot.InUse'))
      .rejectsOnce(awsError('InvalidSnapshot.InUse'))
      .resolves({});

    // Act
    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a'],
      FAST,
    );

    // Assess
    expect(mutations(mocks)).toEqual([
      'DeregisterImage ami-1',
      'DeleteSnapshot snap-a',
      'DeleteSnapshot snap-a',
      'DeleteSnapshot snap-a',
    ]);
    expect(result.removed).toEqual(['ami-1', 'snap-a']);
    expect(result.leftBehind).toEqual([]);
  });

  it('gives up on a snapshot still in use after the bounded retries', async () => {
    // Prepare
    mocks.ec2
      .on(DeleteSnapshotCommand)
      .rejects(awsError('InvalidSnapshot.InUse'));

    // Act
    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a'],
      FAST,
    );

    // Assess: one try and three retries.
    expect(mocks.ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(4);
    expect(result.removed).toEqual(['ami-1']);
    expect(result.leftBehind).toEqual(['snap-a']);
    expect(result.errors[0]?.reason).toMatch(/SnapshotInUseError/);
  });

  it('does not retry a snapshot error other than "in use"', async () => {
    mocks.ec2
      .on(DeleteSnapshotCommand)
      .rejects(awsError('UnauthorizedOperation'));

    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a'],
      FAST,
    );

    expect(mocks.ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(1);
    expect(result.leftBehind).toEqual(['snap-a']);
  });

  it('counts an image and snapshots already gone as done', async () => {
    // Prepare
    mocks.ec2
      .on(DeregisterImageCommand)
      .rejects(awsError('InvalidAMIID.NotFound'));
    mocks.ec2
      .on(DeleteSnapshotCommand)
      .rejects(awsError('InvalidSnapshot.NotFound'));

    // Act
    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a'],
      FAST,
    );

    // Assess
    expect(result).toEqual({
      removed: [],
      alreadyGone: ['ami-1', 'snap-a'],
      leftBehind: [],
      errors: [],
    });
  });

  it('leaves the snapshots alone when the deregistration fails', async () => {
    // Prepare
    mocks.ec2
      .on(DeregisterImageCommand)
      .rejects(awsError('UnauthorizedOperation'));

    // Act
    const result = await deleteImageAndSnapshots(
      store(),
      'ami-1',
      ['snap-a'],
      FAST,
    );

    // Assess
    expect(mocks.ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
    expect(result.leftBehind).toEqual(['ami-1', 'snap-a']);
    expect(result.errors[0]?.reason).toContain('deregister failed');
  });
});

describe('discardImage', () => {
  let mocks: AwsMocks;
  beforeEach(() => {
    mocks = mockAws();
    mocks.ec2.on(DeregisterImageCommand).resolves({});
    mocks.ec2.on(DeleteSnapshotCommand).resolves({});
  });
  afterEach(() => {
    mocks.restore();
  });

  it('deletes the recorded snapshots and those the image names, not ephemeral ones', async () => {
    // Prepare
    mocks.ec2.on(DescribeImagesCommand).resolves({
      Images: [
        ec2Image('ami-1', {
          snapshots: ['snap-root'],
          ephemeral: true,
          runId: 'run-1',
        }),
      ],
    });

    // Act
    const result = await discardImage(store(), 'ami-1', {
      ...FAST,
      runId: 'run-1',
      snapshotIds: ['snap-recorded'],
    });

    // Assess
    expect(mutations(mocks)).toEqual([
      'DeregisterImage ami-1',
      'DeleteSnapshot snap-recorded',
      'DeleteSnapshot snap-root',
    ]);
    expect(result.leftBehind).toEqual([]);
  });

  it('still deletes the recorded snapshots when the image is already gone', async () => {
    // Prepare
    mocks.ec2
      .on(DescribeImagesCommand)
      .rejects(awsError('InvalidAMIID.NotFound'));
    mocks.ec2
      .on(DeregisterImageCommand)
      .rejects(awsError('InvalidAMIID.NotFound'));

    // Act
    const result = await discardImage(store(), 'ami-1', {
      ...FAST,
      snapshotIds: ['snap-a'],
    });

    // Assess
    expect(result).toEqual({
      removed: ['snap-a'],
      alreadyGone: ['ami-1'],
      leftBehind: [],
      errors: [],
    });
  });

  it('refuses an image tagged with another run', async () => {
    // Prepare
    mocks.ec2.on(DescribeImagesCommand).resolves({
      Images: [ec2Image('ami-1', { runId: 'run-other' })],
    });

    // Act
    const result = await discardImage(store(), 'ami-1', {
      ...FAST,
      runId: 'run-1',
    });

    // Assess
    expect(mutations(mocks)).toEqual([]);
    expect(result.errors[0]?.reason).toBe(
      'refused: tagged with run run-other, not run-1',
    );
  });

  it('never throws, and names what is left when describing fails', async () => {
    // Prepare
    mocks.ec2
      .on(DescribeImagesCommand)
      .rejects(awsError('RequestLimitExceeded'));
    mocks.ec2
      .on(DeregisterImageCommand)
      .rejects(awsError('RequestLimitExceeded'));

    // Act
    const result = await discardImage(store(), 'ami-1', {
      ...FAST,
      snapshotIds: ['snap-a'],
    });

    // Assess
    expect(result.leftBehind).toEqual(['ami-1', 'snap-a']);
    expect(result.errors.map((e) => e.id)).toEqual(['ami-1', 'ami-1']);
  });
});
