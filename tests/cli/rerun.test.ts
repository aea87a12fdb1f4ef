import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  RedriveExecutionCommand,
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
  onTestFinished,
  vi,
} from 'vitest';
import { runRerun } from '../../cli/commands/rerun.ts';
import { main } from '../../cli/main.ts';
import {
  ExecutionInputSchema,
  runIdentity,
} from '../../functions/lib/pipeline/run-id.ts';
import {
  BUCKET,
  buildCheck,
  Captured,
  described,
  executionArnOf,
  HistoryBuilder,
  PROFILE_KEY,
  STATE_MACHINE_ARN,
  serveHistory,
  sfnError,
  smokeFailureHistory,
  VERSION_ID,
} from './fixtures.ts';

const sfn = mockClient(SFNClient);

const NAME = 'genesys-euw1-s3-5d41402abc4b2a76';
const ARN = executionArnOf(NAME);
const ENV = { SBC_AMI_STATE_MACHINE_ARN: STATE_MACHINE_ARN };

/** An execution that timed out in the build wait loop: no Fail state. */
function timedOutInBuildLoop(): HistoryBuilder {
  return new HistoryBuilder()
    .started({})
    .task('StartBuild', [{ ok: buildCheck('IN_PROGRESS') }])
    .loop('WaitForBuild', 'CheckBuild', 'BuildReady', 300, [
      buildCheck('IN_PROGRESS'),
    ])
    .waiting('WaitForBuild')
    .timedOut();
}

describe('sbc-ami rerun', () => {
  let output: Captured;
  beforeEach(() => {
    sfn.reset();
    output = new Captured();
    sfn.on(RedriveExecutionCommand).resolves({ redriveDate: new Date() });
    sfn.on(StartExecutionCommand).callsFake((input) => ({
      executionArn: executionArnOf(input.name),
      startDate: new Date(),
    }));
  });

  const rerun = (text: string, options = {}) =>
    runRerun(text, options, { ...output.context, env: ENV });
  const redrives = () => sfn.commandCalls(RedriveExecutionCommand);
  const starts = () =>
    sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input);

  describe('redrive', () => {
    it('redrives a failed execution that Step Functions can redrive', async () => {
      // Prepare
      sfn.on(DescribeExecutionCommand).resolves(
        described(NAME, {
          status: 'FAILED',
          redriveStatus: 'REDRIVABLE',
          error: 'States.Runtime',
          cause: 'path $.build.poll not found',
        }),
      );
      const history = new HistoryBuilder()
        .started({})
        .taskAttempts('CheckBuild', [
          { error: 'States.Runtime', message: 'path $.build.poll not found' },
        ])
        .failedUncaught('States.Runtime', 'path $.build.poll not found');
      serveHistory(sfn, () => history.events, 1000);

      // Act
      const code = await rerun(NAME);

      // Assess
      expect(code).toBe(0);
      expect(redrives().map((call) => call.args[0].input)).toEqual([
        { executionArn: ARN },
      ]);
      expect(starts()).toEqual([]);
      expect(output.out[0]).toBe(
        `redriven ${NAME} (was FAILED): it goes on from the state where it stopped`,
      );
    });

    it('redrives a timed-out execution by its ARN without configuration', async () => {
      sfn
        .on(DescribeExecutionCommand)
        .resolves(
          described(NAME, { status: 'TIMED_OUT', redriveStatus: 'REDRIVABLE' }),
        );
      const history = timedOutInBuildLoop();
      serveHistory(sfn, () => history.events, 1000);

      const code = await runRerun(ARN, {}, { ...output.context, env: {} });

      expect(code).toBe(0);
      expect(redrives()).toHaveLength(1);
      expect(redrives()[0]?.args[0].input.executionArn).toBe(ARN);
    });
  });

  describe('a new execution', () => {
    /** The input a rerun must send: the same profile, a nonce. */
    function expectSameProfileWithNonce(): string {
      const [start] = starts();
      const input = ExecutionInputSchema.parse(JSON.parse(start?.input ?? ''));
      expect(input.profile).toEqual({
        bucket: BUCKET,
        key: PROFILE_KEY,
        versionId: VERSION_ID,
      });
      expect(input.trigger).toMatchObject({
        source: 'manual',
        nonce: expect.any(String),
      });
      expect(start?.name).toBe(runIdentity(input).executionName);
      expect(start?.name).not.toBe(NAME);
      expect(start?.stateMachineArn).toBe(STATE_MACHINE_ARN);
      return start?.name ?? '';
    }

    it('starts one with the same input when the execution is not redrivable', async () => {
      // Prepare
      sfn.on(DescribeExecutionCommand).resolves(
        described(NAME, {
          status: 'FAILED',
          redriveStatus: 'NOT_REDRIVABLE',
          redriveStatusReason: 'Execution redrivable period exceeded',
        }),
      );

      // Act
      const code = await rerun(NAME);

      // Assess
      expect(code).toBe(0);
      expect(redrives()).toEqual([]);
      const name = expectSameProfileWithNonce();
      expect(output.out.join('\n')).toContain(
        `started ${name} with the same profile as ${NAME}`,
      );
      expect(output.out.join('\n')).toContain(
        'Execution redrivable period exceeded',
      );
    });

    it('starts one when the failure path already ran to a Fail state', async () => {
      sfn
        .on(DescribeExecutionCommand)
        .resolves(
          described(NAME, { status: 'FAILED', redriveStatus: 'REDRIVABLE' }),
        );
      const history = smokeFailureHistory();
      serveHistory(sfn, () => history.events, 1000);

      const code = await rerun(NAME);

      expect(code).toBe(0);
      expect(redrives()).toEqual([]);
      expectSameProfileWithNonce();
      // Only the end of the history is read to find the last state.
      const [read] = sfn.commandCalls(GetExecutionHistoryCommand);
      expect(read?.args[0].input).toMatchObject({
        executionArn: ARN,
        reverseOrder: true,
      });
      expect(output.out.join('\n')).toContain('failure path (Failed)');
    });

    it('starts one when Step Functions refuses the redrive', async () => {
      sfn
        .on(DescribeExecutionCommand)
        .resolves(
          described(NAME, { status: 'ABORTED', redriveStatus: 'REDRIVABLE' }),
        );
      sfn
        .on(RedriveExecutionCommand)
        .rejects(
          sfnError(
            'ExecutionNotRedrivable',
            'Execution history event limit exceeded',
          ),
        );

      const code = await rerun(NAME);

      expect(code).toBe(0);
      expect(redrives()).toHaveLength(1);
      expectSameProfileWithNonce();
      expect(output.out.join('\n')).toContain(
        'refused the redrive: Execution history event limit exceeded',
      );
    });

    it('starts one once the redrive count reaches --max-redrives', async () => {
      sfn.on(DescribeExecutionCommand).resolves(
        described(NAME, {
          status: 'TIMED_OUT',
          redriveStatus: 'REDRIVABLE',
          redriveCount: 2,
        }),
      );

      const code = await rerun(NAME, { maxRedrives: '2' });

      expect(code).toBe(0);
      expect(redrives()).toEqual([]);
      expectSameProfileWithNonce();
      expect(output.out.join('\n')).toContain('redriven 2 times already');
    });

    it('starts one for a succeeded execution', async () => {
      sfn
        .on(DescribeExecutionCommand)
        .resolves(described(NAME, { status: 'SUCCEEDED' }));

      const code = await rerun(NAME);

      expect(code).toBe(0);
      expect(redrives()).toEqual([]);
      expectSameProfileWithNonce();
    });

    it('starts one with --no-redrive through the CLI', async () => {
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', STATE_MACHINE_ARN);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      onTestFinished(() => {
        vi.restoreAllMocks();
        vi.unstubAllEnvs();
      });
      sfn
        .on(DescribeExecutionCommand)
        .resolves(
          described(NAME, { status: 'TIMED_OUT', redriveStatus: 'REDRIVABLE' }),
        );

      const code = await main([
        'node',
        'sbc-ami',
        'rerun',
        NAME,
        '--no-redrive',
      ]);

      expect(code).toBe(0);
      expect(redrives()).toEqual([]);
      expectSameProfileWithNonce();
      expect(log.mock.calls.join('\n')).toContain('--no-redrive');
    });
  });

  it('refuses a running execution with exit 1 and says where it is', async () => {
    // Prepare
    sfn
      .on(DescribeExecutionCommand)
      .resolves(described(NAME, { status: 'RUNNING' }));
    const history = new HistoryBuilder()
      .started({})
      .taskAttempts('SmokeTest', [{ ok: {} }]);
    serveHistory(sfn, () => history.events, 1000);

    // Act
    const code = await rerun(NAME);

    // Assess
    expect(code).toBe(1);
    expect(redrives()).toEqual([]);
    expect(starts()).toEqual([]);
    expect(output.err[0]).toBe(
      `not rerun: ${NAME} is running (in SmokeTest), started 2025-06-01 12:00:00Z`,
    );
  });

  describe('usage', () => {
    let error: MockInstance<typeof console.error>;
    beforeEach(() => {
      error = vi.spyOn(console, 'error').mockImplementation(() => {});
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', '');
    });
    afterEach(() => {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    });

    it('exits 2 naming the variable when a name needs the state machine', async () => {
      const code = await main(['node', 'sbc-ami', 'rerun', NAME]);

      expect(code).toBe(2);
      const text = error.mock.calls.join('\n');
      expect(text).toContain('SBC_AMI_STATE_MACHINE_ARN');
      expect(text).toContain("give the execution's ARN");
      expect(sfn.calls()).toHaveLength(0);
    });

    it('exits 2 when no such execution exists', async () => {
      sfn
        .on(DescribeExecutionCommand)
        .rejects(sfnError('ExecutionDoesNotExist', 'Execution Does Not Exist'));

      const code = await main(['node', 'sbc-ami', 'rerun', ARN]);

      expect(code).toBe(2);
      expect(error.mock.calls.join('\n')).toContain(`no execution ${NAME}`);
    });

    it('exits 2 for a malformed --max-redrives', async () => {
      const code = await main([
        'node',
        'sbc-ami',
        'rerun',
        ARN,
        '--max-redrives',
        'many',
      ]);

      expect(code).toBe(2);
      expect(error.mock.calls.join('\n')).toContain('--max-redrives');
    });
  });
});
