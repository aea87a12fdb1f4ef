import {
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  InvalidInputError,
} from '../../functions/lib/errors.ts';
import {
  type ExecutionInput,
  runIdentity,
} from '../../functions/lib/pipeline/run-id.ts';
import {
  awsTriggerDeps,
  handleTrigger,
  ScheduledProfileMissingError,
  type TriggerDeps,
  triggerSettingsFromEnv,
} from '../../functions/lib/trigger/index.ts';
import { triggerHandler } from '../../functions/trigger.ts';
import {
  BUCKET,
  LAMBDA_CONTEXT,
  PREFIX,
  SCHEDULE_TIME,
  STATE_MACHINE_ARN,
  s3Event,
  scheduledEvent,
} from './events.ts';

interface Mocks {
  sfn: AwsClientStub<SFNClient>;
  s3: AwsClientStub<S3Client>;
}

let mocks: Mocks;

beforeEach(() => {
  mocks = { sfn: mockClient(SFNClient), s3: mockClient(S3Client) };
  mocks.sfn.on(StartExecutionCommand).callsFake((input) => ({
    executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${input.name}`,
    startDate: new Date('2026-11-30T09:15:28Z'),
  }));
});

afterEach(() => {
  mocks.sfn.restore();
  mocks.s3.restore();
});

function deps(scheduledKeys: string[] = []): TriggerDeps {
  return awsTriggerDeps(
    {
      stateMachineArn: STATE_MACHINE_ARN,
      bucket: BUCKET,
      prefix: PREFIX,
      scheduledKeys,
    },
    { sfn: new SFNClient({ region: 'eu-west-1' }), s3: new S3Client({}) },
  );
}

/** The StartExecution requests sent, with their inputs parsed. */
function startedExecutions(): { name?: string; input: ExecutionInput }[] {
  return mocks.sfn.commandCalls(StartExecutionCommand).map((call) => {
    expect(call.args[0].input.stateMachineArn).toBe(STATE_MACHINE_ARN);
    return {
      name: call.args[0].input.name,
      input: JSON.parse(call.args[0].input.input ?? 'null'),
    };
  });
}

function s3Input(key: string, versionId: string): ExecutionInput {
  return {
    trigger: { source: 's3' },
    profile: { bucket: BUCKET, key, versionId },
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('handleTrigger on S3 notifications', () => {
  it('starts one execution named by the run identity of the object version', async () => {
    // Prepare
    const event = s3Event({
      encodedKey: 'profiles/genesys-byoc.json',
      versionId: 'Vk3qXz1Abc.9',
    });

    // Act
    const report = await handleTrigger(event, deps());

    // Assess
    const expected = s3Input('profiles/genesys-byoc.json', 'Vk3qXz1Abc.9');
    const name = runIdentity(expected).executionName;
    expect(startedExecutions()).toEqual([{ name, input: expected }]);
    expect(name).toMatch(/^genesys-byoc-s3-[0-9a-f]{16}$/);
    expect(report.started).toEqual([
      {
        execution: name,
        key: 'profiles/genesys-byoc.json',
        versionId: 'Vk3qXz1Abc.9',
      },
    ]);
  });

  it('decodes + as a space and %2B as a plus in the key', async () => {
    // Prepare
    const event = s3Event({
      encodedKey: 'profiles/Carrier+A+%2B+Genesys+%28EU%29.json',
      versionId: 'v1',
    });

    // Act
    await handleTrigger(event, deps());

    // Assess
    const [run] = startedExecutions();
    expect(run?.input.profile.key).toBe(
      'profiles/Carrier A + Genesys (EU).json',
    );
    expect(run?.name).toBe(
      runIdentity(s3Input('profiles/Carrier A + Genesys (EU).json', 'v1'))
        .executionName,
    );
  });

  it('decodes a percent-encoded unicode key into a name-safe execution', async () => {
    // Prepare
    const event = s3Event({
      encodedKey: 'profiles/S%C3%A3o+Paulo+%E2%86%92+%E6%9D%B1%E4%BA%AC.json',
      versionId: 'v7',
    });

    // Act
    await handleTrigger(event, deps());

    // Assess
    const [run] = startedExecutions();
    expect(run?.input.profile.key).toBe('profiles/São Paulo → 東京.json');
    expect(run?.name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });

  it('ignores folder markers, keys outside the prefix and other files', async () => {
    // Prepare
    const event = s3Event(
      { encodedKey: 'profiles/', versionId: 'm1', size: 0 },
      { encodedKey: 'profiles/archive/', versionId: 'm2', size: 0 },
      { encodedKey: 'profiles/archive.json/', versionId: 'm3', size: 0 },
      { encodedKey: 'profiles/readme.md', versionId: 'r1' },
      { encodedKey: 'profiles/.json', versionId: 'r2' },
      { encodedKey: 'drafts/genesys.json', versionId: 'd1' },
    );

    // Act
    const report = await handleTrigger(event, deps());

    // Assess
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(report.ignored).toEqual([
      { key: 'profiles/', reason: 'a folder marker' },
      { key: 'profiles/archive/', reason: 'a folder marker' },
      { key: 'profiles/archive.json/', reason: 'a folder marker' },
      { key: 'profiles/readme.md', reason: 'not a .json profile' },
      { key: 'profiles/.json', reason: 'not a .json profile' },
      {
        key: 'drafts/genesys.json',
        reason: 'outside the profile prefix profiles/',
      },
    ]);
  });

  it('ignores removals and objects of another bucket', async () => {
    // Prepare
    const event = s3Event(
      {
        encodedKey: 'profiles/a.json',
        versionId: 'x',
        eventName: 'ObjectRemoved:DeleteMarkerCreated',
      },
      { encodedKey: 'profiles/a.json', versionId: 'y', bucket: 'elsewhere' },
    );

    // Act
    const report = await handleTrigger(event, deps());

    // Assess
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(report.ignored.map((item) => item.reason)).toEqual([
      'a ObjectRemoved:DeleteMarkerCreated event, not an object creation',
      `in bucket elsewhere, not the config bucket ${BUCKET}`,
    ]);
  });

  it('starts nothing new when the same event is delivered again', async () => {
    // Prepare
    const event = s3Event({ encodedKey: 'profiles/a.json', versionId: 'v1' });
    await handleTrigger(event, deps());
    mocks.sfn.on(StartExecutionCommand).rejects(
      new ExecutionAlreadyExists({
        message: 'Execution Already Exists',
        $metadata: {},
      }),
    );

    // Act
    const again = await handleTrigger(event, deps());

    // Assess
    const [first, second] = startedExecutions();
    expect(second?.name).toBe(first?.name);
    expect(second?.input).toEqual(first?.input);
    expect(again.started).toEqual([]);
    expect(again.alreadyStarted.map((run) => run.execution)).toEqual([
      first?.name,
    ]);
  });

  it('starts one execution for a record repeated within one event', async () => {
    // Prepare
    const record = { encodedKey: 'profiles/a.json', versionId: 'v1' };

    // Act
    const report = await handleTrigger(s3Event(record, record), deps());

    // Assess
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
    expect(report.started).toHaveLength(1);
  });

  it('names a new execution for a new version of the same key', async () => {
    // Prepare
    const event = s3Event(
      { encodedKey: 'profiles/a.json', versionId: 'v1' },
      { encodedKey: 'profiles/a.json', versionId: 'v2' },
    );

    // Act
    await handleTrigger(event, deps());

    // Assess
    const names = startedExecutions().map((run) => run.name);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
  });

  it('rejects a profile without a version id, naming the field, and starts nothing', async () => {
    // Prepare
    const event = s3Event(
      { encodedKey: 'profiles/a.json', versionId: 'v1' },
      { encodedKey: 'profiles/b.json' },
    );

    // Act
    const error = await rejection(handleTrigger(event, deps()));

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain('Records.1.s3.object.versionId');
    expect(error.message).toContain('profiles/b.json');
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('rejects the version id "null" of an unversioned upload', async () => {
    // Prepare
    const event = s3Event({ encodedKey: 'profiles/a.json', versionId: 'null' });

    // Act
    const error = await rejection(handleTrigger(event, deps()));

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain('Records.0.s3.object.versionId');
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('rejects a key that is not valid percent-encoding, naming the field', async () => {
    // Prepare
    const event = s3Event({
      encodedKey: 'profiles/%E0%A4%A.json',
      versionId: 'v',
    });

    // Act
    const error = await rejection(handleTrigger(event, deps()));

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain('Records.0.s3.object.key');
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it.each([
    ['an empty object', {}, '(event)'],
    ['null', null, '(event)'],
    ['a string', 'profiles/a.json', '(event)'],
    ['no records', { Records: [] }, 'Records'],
    [
      'a record without its object',
      {
        Records: [
          {
            eventSource: 'aws:s3',
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: BUCKET } },
          },
        ],
      },
      'Records.0.s3.object',
    ],
    [
      'a record from another service',
      {
        Records: [
          {
            ...s3Event({ encodedKey: 'profiles/a.json', versionId: 'v' })
              .Records[0],
            eventSource: 'aws:sqs',
          },
        ],
      },
      'Records.0.eventSource',
    ],
  ])(
    'rejects a malformed event (%s) and starts nothing',
    async (_, event, field) => {
      // Act
      const error = await rejection(handleTrigger(event, deps()));

      // Assess
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toContain(`${field}:`);
      expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    },
  );

  it('passes a Step Functions failure other than a known name through', async () => {
    // Prepare
    mocks.sfn.on(StartExecutionCommand).rejects(
      Object.assign(new Error('state machine does not exist'), {
        name: 'StateMachineDoesNotExist',
      }),
    );
    const event = s3Event({ encodedKey: 'profiles/a.json', versionId: 'v1' });

    // Act
    const error = await rejection(handleTrigger(event, deps()));

    // Assess
    expect(error.name).toBe('StateMachineDoesNotExist');
  });
});

describe('handleTrigger on the schedule', () => {
  it('starts every profile under the prefix at its latest version', async () => {
    // Prepare: two pages, with a folder marker and a non-profile between.
    mocks.s3
      .on(ListObjectsV2Command, { Bucket: BUCKET, Prefix: PREFIX })
      .resolvesOnce({
        Contents: [{ Key: 'profiles/' }, { Key: 'profiles/a.json' }],
        IsTruncated: true,
        NextContinuationToken: 'page-2',
      })
      .resolvesOnce({
        Contents: [{ Key: 'profiles/notes.txt' }, { Key: 'profiles/b c.json' }],
        IsTruncated: false,
      });
    mocks.s3
      .on(HeadObjectCommand, { Key: 'profiles/a.json' })
      .resolves({ VersionId: 'a-3' })
      .on(HeadObjectCommand, { Key: 'profiles/b c.json' })
      .resolves({ VersionId: 'bc-1' });

    // Act
    const report = await handleTrigger(scheduledEvent(), deps());

    // Assess
    const trigger = { source: 'schedule' as const, time: SCHEDULE_TIME };
    const inputs = [
      {
        trigger,
        profile: { bucket: BUCKET, key: 'profiles/a.json', versionId: 'a-3' },
      },
      {
        trigger,
        profile: {
          bucket: BUCKET,
          key: 'profiles/b c.json',
          versionId: 'bc-1',
        },
      },
    ];
    expect(startedExecutions()).toEqual(
      inputs.map((input) => ({
        name: runIdentity(input).executionName,
        input,
      })),
    );
    // The paginator reuses one input object, so the recorded tokens cannot
    // be read back per call; the second page's profile shows it was read.
    expect(mocks.s3.commandCalls(ListObjectsV2Command)).toHaveLength(2);
    expect(mocks.s3.commandCalls(HeadObjectCommand)).toHaveLength(2);
    expect(report.source).toBe('schedule');
  });

  it('names the same executions when the same fire is delivered twice', async () => {
    // Prepare
    mocks.s3.on(HeadObjectCommand).resolves({ VersionId: 'a-3' });
    await handleTrigger(scheduledEvent(), deps(['profiles/a.json']));
    mocks.sfn
      .on(StartExecutionCommand)
      .rejects(
        new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }),
      );

    // Act
    const again = await handleTrigger(
      scheduledEvent(),
      deps(['profiles/a.json']),
    );

    // Assess
    const [first, second] = startedExecutions();
    expect(second?.name).toBe(first?.name);
    expect(again.alreadyStarted).toHaveLength(1);
  });

  it('names a new execution for the next fire', async () => {
    // Prepare
    mocks.s3.on(HeadObjectCommand).resolves({ VersionId: 'a-3' });

    // Act
    await handleTrigger(scheduledEvent(), deps(['profiles/a.json']));
    await handleTrigger(
      scheduledEvent('2026-12-07T04:00:00Z'),
      deps(['profiles/a.json']),
    );

    // Assess
    const [first, second] = startedExecutions();
    expect(first?.name).not.toBe(second?.name);
    expect(second?.input.trigger).toEqual({
      source: 'schedule',
      time: '2026-12-07T04:00:00Z',
    });
  });

  it('starts the configured profiles, then fails naming the missing one', async () => {
    // Prepare
    mocks.s3
      .on(HeadObjectCommand, { Key: 'profiles/a.json' })
      .resolves({ VersionId: 'a-3' })
      .on(HeadObjectCommand, { Key: 'profiles/gone.json' })
      .rejects(new NotFound({ message: 'Not Found', $metadata: {} }));

    // Act
    const error = await rejection(
      handleTrigger(
        scheduledEvent(),
        deps(['profiles/gone.json', 'profiles/a.json']),
      ),
    );

    // Assess
    expect(error).toBeInstanceOf(ScheduledProfileMissingError);
    expect(error.message).toContain('profiles/gone.json');
    expect(mocks.s3.commandCalls(ListObjectsV2Command)).toHaveLength(0);
    expect(startedExecutions().map((run) => run.input.profile.key)).toEqual([
      'profiles/a.json',
    ]);
  });

  it('fails with the bucket named when it is not versioned', async () => {
    // Prepare
    mocks.s3.on(HeadObjectCommand).resolves({});

    // Act
    const error = await rejection(
      handleTrigger(scheduledEvent(), deps(['profiles/a.json'])),
    );

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain(`s3://${BUCKET}/profiles/a.json`);
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('passes an S3 failure other than a missing object through', async () => {
    // Prepare
    mocks.s3
      .on(HeadObjectCommand)
      .rejects(new NoSuchKey({ message: 'odd', $metadata: {} }));

    // Act
    const error = await rejection(
      handleTrigger(scheduledEvent(), deps(['profiles/a.json'])),
    );

    // Assess
    expect(error.name).toBe('NoSuchKey');
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('rejects a scheduled event without a valid time, naming the field', async () => {
    // Act
    const error = await rejection(
      handleTrigger(scheduledEvent('last monday'), deps(['profiles/a.json'])),
    );

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain('time:');
    expect(mocks.s3.calls()).toHaveLength(0);
    expect(mocks.sfn.calls()).toHaveLength(0);
  });
});

describe('triggerSettingsFromEnv', () => {
  const base = {
    STATE_MACHINE_ARN,
    CONFIG_BUCKET: BUCKET,
  };

  it('reads the settings with the default prefix and no scheduled keys', () => {
    // Act
    const settings = triggerSettingsFromEnv(base);

    // Assess
    expect(settings).toEqual({
      stateMachineArn: STATE_MACHINE_ARN,
      bucket: BUCKET,
      prefix: 'profiles/',
      scheduledKeys: [],
    });
  });

  it('fails naming STATE_MACHINE_ARN when it is missing', () => {
    // Act
    const act = () => triggerSettingsFromEnv({ CONFIG_BUCKET: BUCKET });

    // Assess
    expect(act).toThrow(ConfigurationError);
    expect(act).toThrow(/STATE_MACHINE_ARN/);
  });

  it('fails naming PROFILE_PREFIX when it does not end with a slash', () => {
    // Act
    const act = () =>
      triggerSettingsFromEnv({ ...base, PROFILE_PREFIX: 'profiles' });

    // Assess
    expect(act).toThrow(/PROFILE_PREFIX/);
  });

  it('fails naming SCHEDULED_PROFILE_KEYS when a key is not a profile', () => {
    // Act
    const act = () =>
      triggerSettingsFromEnv({
        ...base,
        SCHEDULED_PROFILE_KEYS: 'profiles/a.json, other/b.json',
      });

    // Assess
    expect(act).toThrow(/SCHEDULED_PROFILE_KEYS: other\/b\.json is outside/);
  });
});

describe('trigger handler', () => {
  it('returns the report of a profile upload', async () => {
    // Prepare
    const handler = triggerHandler(() => deps());
    const event = s3Event({ encodedKey: 'profiles/a.json', versionId: 'v1' });

    // Act
    const report = await handler(event, LAMBDA_CONTEXT as Context);

    // Assess
    expect(report.started.map((run) => run.key)).toEqual(['profiles/a.json']);
    expect(mocks.sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
  });

  it('fails with the named error of a malformed event', async () => {
    // Prepare
    const handler = triggerHandler(() => deps());

    // Act
    const error = await rejection(
      handler({ Records: 'none' }, LAMBDA_CONTEXT as Context),
    );

    // Assess
    expect(error.name).toBe('InvalidInputError');
    expect(error.message).toContain('Records:');
    expect(mocks.sfn.calls()).toHaveLength(0);
  });
});
