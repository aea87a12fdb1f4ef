import {
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import {
  afterEach,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { main } from '../../cli/main.ts';
import {
  ExecutionInputSchema,
  runIdentity,
} from '../../functions/lib/pipeline/run-id.ts';
import {
  BUCKET,
  described,
  executionArnOf,
  PROFILE_KEY,
  REGION,
  STATE_MACHINE_ARN,
  sfnError,
  VERSION_ID,
} from './fixtures.ts';

const sfn = mockClient(SFNClient);

function run(...args: string[]): Promise<number> {
  return main(['node', 'sbc-ami', 'run', ...args]);
}

/** The name `run` must give the plain run of this profile version. */
const PLAIN = runIdentity({
  trigger: { source: 'manual' },
  profile: { bucket: BUCKET, key: PROFILE_KEY, versionId: VERSION_ID },
});

describe('sbc-ami run', () => {
  let log: MockInstance<typeof console.log>;
  let error: MockInstance<typeof console.error>;
  beforeEach(() => {
    sfn.reset();
    log = vi.spyOn(console, 'log').mockImplementation(() => {});
    error = vi.spyOn(console, 'error').mockImplementation(() => {});
    vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', STATE_MACHINE_ARN);
    vi.stubEnv('SBC_AMI_CONFIG_BUCKET', BUCKET);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  const printed = () =>
    log.mock.calls.map((call) => String(call[0])).join('\n');
  const complaints = () =>
    error.mock.calls.map((call) => String(call[0])).join('\n');
  const starts = () =>
    sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input);

  describe('deterministic names', () => {
    it('names the same execution when the same version is run twice', async () => {
      // Prepare
      sfn
        .on(StartExecutionCommand)
        .resolvesOnce({
          executionArn: executionArnOf(PLAIN.executionName),
          startDate: new Date(),
        })
        .rejects(
          sfnError('ExecutionAlreadyExists', 'Execution Already Exists'),
        );
      sfn.on(DescribeExecutionCommand).resolves(
        described(PLAIN.executionName, {
          status: 'SUCCEEDED',
          stopDate: new Date(Date.now() - 60_000),
          startDate: new Date(Date.now() - 3_600_000),
        }),
      );

      // Act
      const first = await run(PROFILE_KEY, '--version-id', VERSION_ID);
      const second = await run(PROFILE_KEY, '--version-id', VERSION_ID);

      // Assess
      expect([first, second]).toEqual([0, 0]);
      const [one, two] = starts();
      expect(one?.name).toBe(PLAIN.executionName);
      expect(two?.name).toBe(PLAIN.executionName);
      expect(one?.stateMachineArn).toBe(STATE_MACHINE_ARN);
      expect(JSON.parse(one?.input ?? '')).toEqual({
        trigger: { source: 'manual' },
        profile: { bucket: BUCKET, key: PROFILE_KEY, versionId: VERSION_ID },
      });
      expect(
        sfn.commandCalls(DescribeExecutionCommand)[0]?.args[0].input,
      ).toEqual({ executionArn: executionArnOf(PLAIN.executionName) });
      expect(printed()).toContain(`started ${PLAIN.executionName}`);
      expect(printed()).toContain(
        `already exists: ${PLAIN.executionName} is SUCCEEDED`,
      );
      expect(printed()).toContain(`sbc-ami rerun ${PLAIN.executionName}`);
    });

    it('gives --force runs a new name and a nonce each time', async () => {
      sfn.on(StartExecutionCommand).callsFake((input) => ({
        executionArn: executionArnOf(input.name),
        startDate: new Date(),
      }));

      const codes = [
        await run(PROFILE_KEY, '--version-id', VERSION_ID, '--force'),
        await run(PROFILE_KEY, '--version-id', VERSION_ID, '--force'),
      ];

      expect(codes).toEqual([0, 0]);
      const names = starts().map((input) => input?.name);
      expect(new Set([...names, PLAIN.executionName]).size).toBe(3);
      for (const input of starts()) {
        const body = ExecutionInputSchema.parse(JSON.parse(input?.input ?? ''));
        expect(body.trigger).toMatchObject({
          source: 'manual',
          nonce: expect.any(String),
        });
        expect(input?.name).toBe(runIdentity(body).executionName);
      }
    });

    it('leaves the version to Prepare when --version-id is absent', async () => {
      sfn.on(StartExecutionCommand).resolves({
        executionArn: executionArnOf('x'),
        startDate: new Date(),
      });

      const code = await run(PROFILE_KEY);

      expect(code).toBe(0);
      const input = JSON.parse(starts()[0]?.input ?? '');
      expect(input.profile).toEqual({ bucket: BUCKET, key: PROFILE_KEY });
      expect(starts()[0]?.name).toBe(
        runIdentity({
          trigger: { source: 'manual' },
          profile: { bucket: BUCKET, key: PROFILE_KEY },
        }).executionName,
      );
    });

    it('says a still running execution was already there', async () => {
      // Step Functions answers a repeated start of a running execution
      // with the original one instead of an error.
      const startDate = new Date(Date.now() - 20 * 60_000);
      sfn.on(StartExecutionCommand).resolves({
        executionArn: executionArnOf(PLAIN.executionName),
        startDate,
      });

      const code = await run(PROFILE_KEY, '--version-id', VERSION_ID, '--json');

      expect(code).toBe(0);
      expect(JSON.parse(printed())).toMatchObject({
        action: 'running',
        name: PLAIN.executionName,
        executionArn: executionArnOf(PLAIN.executionName),
        startDate: startDate.toISOString(),
      });
    });
  });

  it('prints the execution ARN and how to follow it', async () => {
    sfn.on(StartExecutionCommand).resolves({
      executionArn: executionArnOf(PLAIN.executionName),
      startDate: new Date(),
    });

    const code = await run(PROFILE_KEY, '--version-id', VERSION_ID);

    expect(code).toBe(0);
    expect(printed()).toContain(executionArnOf(PLAIN.executionName));
    expect(printed()).toContain(
      `sbc-ami status ${PLAIN.executionName} --watch`,
    );
  });

  it('takes the bucket from an s3:// argument', async () => {
    vi.stubEnv('SBC_AMI_CONFIG_BUCKET', '');
    sfn.on(StartExecutionCommand).resolves({
      executionArn: executionArnOf('x'),
      startDate: new Date(),
    });

    const code = await run(`s3://other-bucket/${PROFILE_KEY}`);

    expect(code).toBe(0);
    expect(JSON.parse(starts()[0]?.input ?? '').profile).toEqual({
      bucket: 'other-bucket',
      key: PROFILE_KEY,
    });
  });

  describe('configuration', () => {
    it('prefers --state-machine over the variable', async () => {
      const flag = STATE_MACHINE_ARN.replace('prod', 'staging');
      sfn.on(StartExecutionCommand).resolves({
        executionArn: executionArnOf('x'),
        startDate: new Date(),
      });

      const code = await run(PROFILE_KEY, '--state-machine', flag);

      expect(code).toBe(0);
      expect(starts()[0]?.stateMachineArn).toBe(flag);
    });

    it.each([
      ['SBC_AMI_STATE_MACHINE_ARN', '--state-machine ARN'],
      ['SBC_AMI_CONFIG_BUCKET', '--bucket NAME'],
    ])('exits 2 naming %s when it is missing', async (variable, flag) => {
      vi.stubEnv(variable, '');

      const code = await run(PROFILE_KEY);

      expect(code).toBe(2);
      expect(complaints()).toContain(variable);
      expect(complaints()).toContain(flag);
      expect(starts()).toEqual([]);
    });

    it('exits 2 naming the variable when its ARN is malformed', async () => {
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', 'sbc-ami-pipeline-prod');

      const code = await run(PROFILE_KEY);

      expect(code).toBe(2);
      expect(complaints()).toContain(
        'SBC_AMI_STATE_MACHINE_ARN: "sbc-ami-pipeline-prod" is not a state machine ARN',
      );
    });

    it('exits 2 when --region disagrees with the ARN', async () => {
      const code = await run(PROFILE_KEY, '--region', 'us-east-1');

      expect(code).toBe(2);
      expect(complaints()).toContain(`ARN's region ${REGION}`);
      expect(starts()).toEqual([]);
    });

    it('exits 2 when the state machine does not exist', async () => {
      sfn
        .on(StartExecutionCommand)
        .rejects(
          sfnError('StateMachineDoesNotExist', 'State Machine Does Not Exist'),
        );

      const code = await run(PROFILE_KEY);

      expect(code).toBe(2);
      expect(complaints()).toContain(
        `sbc-ami: SBC_AMI_STATE_MACHINE_ARN=${STATE_MACHINE_ARN}: no such ` +
          'state machine',
      );
      expect(complaints()).not.toContain('--state-machine');
    });

    it('names --state-machine when the missing state machine came from it', async () => {
      const flag = STATE_MACHINE_ARN.replace('prod', 'staging');
      sfn
        .on(StartExecutionCommand)
        .rejects(
          sfnError('StateMachineDoesNotExist', 'State Machine Does Not Exist'),
        );

      const code = await run(PROFILE_KEY, '--state-machine', flag);

      expect(code).toBe(2);
      expect(complaints()).toContain(
        `sbc-ami: --state-machine ${flag}: no such state machine`,
      );
      expect(starts()[0]?.stateMachineArn).toBe(flag);
    });

    it('exits 2 for a profile key that is a path', async () => {
      const code = await run('/etc/profile.json');

      expect(code).toBe(2);
      expect(complaints()).toContain('must be a key in the bucket');
    });
  });

  it('exits 1 when Step Functions refuses the start', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(sfnError('ExecutionLimitExceeded', 'too many running'));

    const code = await run(PROFILE_KEY);

    expect(code).toBe(1);
    expect(complaints()).toContain('ExecutionLimitExceeded');
  });
});
