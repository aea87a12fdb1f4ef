import { PassThrough } from 'node:stream';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
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
import { EXIT_INTERRUPTED, runStatus } from '../../cli/commands/status.ts';
import { main } from '../../cli/main.ts';
import {
  buildCheck,
  Captured,
  described,
  executionArnOf,
  HistoryBuilder,
  SMOKE_CAUSE,
  STATE_MACHINE_ARN,
  serveHistory,
  sfnError,
  smokeFailureHistory,
  T0,
} from './fixtures.ts';

const sfn = mockClient(SFNClient);

const NAME = 'genesys-euw1-s3-5d41402abc4b2a76';
const ARN = executionArnOf(NAME);
const ENV = { SBC_AMI_STATE_MACHINE_ARN: STATE_MACHINE_ARN };
const FAILURE = `smoke test: ${SMOKE_CAUSE}`;

/** The whole rendering of the smoke-test failure, header to verdict. */
const FAILED_PICTURE = [
  `execution  ${NAME}`,
  `arn        ${ARN}`,
  'profile    s3://sbc-ami-config-prod/profiles/genesys-euw1.json ' +
    '(version 3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY), s3 trigger',
  'started    2025-06-01 12:00:00Z',
  '  ok      Prepare                                            1.3s',
  '  ok      StartBuild                                         0.7s',
  '  ok      CheckBuild x7 (IN_PROGRESS x6, SUCCEEDED)       35m 06s',
  '  ok      ResolveImage                                       3.7s',
  '          retried x1: Lambda.TooManyRequestsException',
  '  ok      CheckImage x3 (pending x2, DONE)                 1m 32s',
  '  ok      LaunchTestInstance                                 0.9s',
  '  ok      CheckTestInstance x2 (pending, DONE)                31s',
  '  caught  SmokeTest                                           14s',
  `          caught SmokeTestFailedError: ${SMOKE_CAUSE} -> TerminateAfterFailure`,
  '  ok      TerminateAfterFailure                              0.9s',
  '  ok      DiscardImage                                       0.9s',
  '  ok      SweepBuildLeftovers                                0.9s',
  '  ok      NotifyFailure                                      0.9s',
  '  FAILED  Failed',
  `verdict    FAILED after 37m 35s: SmokeTestFailedError: ${FAILURE}`,
];

function failedExecution(history: HistoryBuilder) {
  return described(NAME, {
    status: 'FAILED',
    stopDate: history.now,
    error: 'SmokeTestFailedError',
    cause: FAILURE,
    redriveStatus: 'REDRIVABLE',
  });
}

describe('sbc-ami status', () => {
  let output: Captured;
  beforeEach(() => {
    sfn.reset();
    output = new Captured();
  });

  const status = (text: string | undefined, options = {}, extra = {}) =>
    runStatus(text, options, { ...output.context, env: ENV, ...extra });

  describe('an execution', () => {
    it('follows the history page by page and renders every state', async () => {
      // Prepare
      const history = smokeFailureHistory();
      sfn.on(DescribeExecutionCommand).resolves(failedExecution(history));
      const tokens = serveHistory(sfn, () => history.events, 7);

      // Act
      const code = await status(NAME);

      // Assess
      expect(code).toBe(1);
      const pages = Math.ceil(history.events.length / 7);
      expect(tokens).toEqual([
        undefined,
        ...Array.from({ length: pages - 1 }, (_, i) => `page:${(i + 1) * 7}`),
      ]);
      expect(
        sfn.commandCalls(GetExecutionHistoryCommand)[0]?.args[0].input,
      ).toMatchObject({ executionArn: ARN, includeExecutionData: true });
      expect(output.out).toEqual(FAILED_PICTURE);
    });

    it('shows the state running now and exits 0 while it runs', async () => {
      // Prepare
      const history = new HistoryBuilder()
        .started({})
        .task('Prepare', [{ ok: {} }])
        .task('StartBuild', [{ ok: buildCheck('IN_PROGRESS') }])
        .loop('WaitForBuild', 'CheckBuild', 'BuildReady', 300, [
          buildCheck('IN_PROGRESS'),
          buildCheck('IN_PROGRESS'),
          buildCheck('IN_PROGRESS'),
        ])
        .waiting('WaitForBuild');
      sfn.on(DescribeExecutionCommand).resolves(described(NAME));
      serveHistory(sfn, () => history.events, 1000);
      const now = new Date(history.now.getTime() + 125_000);

      // Act
      const code = await status(NAME, {}, { now: () => now });

      // Assess
      expect(code).toBe(0);
      expect(output.out.slice(4)).toEqual([
        '  ok      Prepare                                            0.9s',
        '  ok      StartBuild                                         0.9s',
        '  ok      CheckBuild x3 (IN_PROGRESS)                     15m 02s',
        'now        waiting in WaitForBuild, then CheckBuild (2m 05s)',
        'verdict    RUNNING for 17m 09s, not finished',
      ]);
    });

    it('exits 1 for a timed-out execution and shows where it stopped', async () => {
      const history = new HistoryBuilder()
        .started({})
        .taskAttempts('CheckImage', [{ ok: {} }])
        .timedOut();
      sfn.on(DescribeExecutionCommand).resolves(
        described(NAME, {
          status: 'TIMED_OUT',
          stopDate: history.now,
          error: 'States.Timeout',
        }),
      );
      serveHistory(sfn, () => history.events, 1000);

      const code = await status(NAME);

      expect(code).toBe(1);
      expect(output.out).toContain(
        '          States.Timeout: The execution timed out after 21600 seconds',
      );
      expect(output.out.at(-1)).toMatch(
        /^verdict {4}TIMED_OUT after .*: States\.Timeout$/,
      );
    });

    it('prints the steps as JSON with --json', async () => {
      const history = smokeFailureHistory();
      sfn.on(DescribeExecutionCommand).resolves(failedExecution(history));
      serveHistory(sfn, () => history.events, 50);

      const code = await status(NAME, { json: true });

      expect(code).toBe(1);
      const document = JSON.parse(output.out.join('\n'));
      expect(document).toMatchObject({
        name: NAME,
        status: 'FAILED',
        error: 'SmokeTestFailedError',
        cause: FAILURE,
      });
      const steps = document.steps as { state: string; outcome: string }[];
      expect(steps.map((step) => step.state)).toEqual([
        'Prepare',
        'StartBuild',
        'CheckBuild',
        'ResolveImage',
        'CheckImage',
        'LaunchTestInstance',
        'CheckTestInstance',
        'SmokeTest',
        'TerminateAfterFailure',
        'DiscardImage',
        'SweepBuildLeftovers',
        'NotifyFailure',
        'Failed',
      ]);
      expect(steps[7]).toMatchObject({
        outcome: 'caught',
        next: 'TerminateAfterFailure',
      });
    });
  });

  describe('--watch', () => {
    /**
     * Three polls of one execution: inside the build loop, inside the
     * failure path, then failed. Each DescribeExecution is a new poll, and
     * the history served after it has grown to that poll's length.
     */
    function threePolls() {
      const full = smokeFailureHistory();
      const endOf = (state: string, nth = 1) => {
        let seen = 0;
        return full.events.findIndex(
          (event) =>
            event.type?.endsWith('StateEntered') &&
            event.stateEnteredEventDetails?.name === state &&
            ++seen === nth,
        );
      };
      const cuts = [
        endOf('WaitForBuild', 4) + 1,
        endOf('DiscardImage') + 2,
        full.events.length,
      ];
      let poll = -1;
      sfn.on(DescribeExecutionCommand).callsFake(() => {
        poll = Math.min(poll + 1, cuts.length - 1);
        return poll < cuts.length - 1 ? described(NAME) : failedExecution(full);
      });
      const visible = (): HistoryEvent[] =>
        full.events.slice(0, cuts[Math.max(poll, 0)]);
      serveHistory(sfn, visible, 10);
      return { full, now: () => full.now };
    }

    it('appends each row once it is final when not on a terminal', async () => {
      // Prepare
      const { now } = threePolls();

      // Act
      const code = await status(
        NAME,
        { watch: true },
        { terminal: null, intervalMs: 1, now },
      );

      // Assess
      expect(code).toBe(1);
      expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(3);
      expect(output.out).toEqual([
        ...FAILED_PICTURE.slice(0, 6),
        '  ..      CheckBuild x3 (IN_PROGRESS)',
        ...FAILED_PICTURE.slice(6, 15),
        '  ..      DiscardImage',
        ...FAILED_PICTURE.slice(15),
      ]);
    });

    it('exits 0 when the execution succeeds', async () => {
      const history = new HistoryBuilder()
        .started({})
        .task('NotifySuccess', [{ ok: {} }])
        .succeed('Published');
      sfn
        .on(DescribeExecutionCommand)
        .resolvesOnce(described(NAME))
        .resolves(
          described(NAME, { status: 'SUCCEEDED', stopDate: history.now }),
        );
      serveHistory(sfn, () => history.events, 1000);

      const code = await status(
        NAME,
        { watch: true },
        { terminal: null, intervalMs: 1 },
      );

      expect(code).toBe(0);
      expect(output.out).toContain('  ok      Published');
      expect(output.out.at(-1)).toMatch(/^verdict {4}SUCCEEDED in /);
    });

    it('draws the picture again in place on a terminal', async () => {
      // Prepare
      const { now } = threePolls();
      const terminal = Object.assign(new PassThrough(), { columns: 200 });
      const written: string[] = [];
      terminal.on('data', (chunk: Buffer) => written.push(chunk.toString()));

      // Act
      const code = await status(
        NAME,
        { watch: true },
        { terminal, intervalMs: 1, now },
      );

      // Assess
      expect(code).toBe(1);
      const frames = written.filter((chunk) => chunk.includes('execution  '));
      expect(frames).toHaveLength(3);
      const firstFrameRows = frames[0]?.trimEnd().split('\n').length ?? 0;
      // Cursor up over the first frame, to column 1, clear below.
      expect(written).toContain(`\x1b[${firstFrameRows}A`);
      expect(written).toContain('\x1b[0J');
      expect(frames[2]?.trimEnd().split('\n')).toEqual(FAILED_PICTURE);
    });

    it('keeps the newest lines of a picture taller than the terminal', async () => {
      const { now } = threePolls();
      const terminal = Object.assign(new PassThrough(), {
        columns: 200,
        rows: 10,
      });
      const written: string[] = [];
      terminal.on('data', (chunk: Buffer) => written.push(chunk.toString()));

      await status(NAME, { watch: true }, { terminal, intervalMs: 1, now });

      const last = written.at(-1)?.trimEnd().split('\n');
      expect(last).toEqual([
        `  (${FAILED_PICTURE.length - 8} lines above)`,
        ...FAILED_PICTURE.slice(-8),
      ]);
    });

    it('prints the final document once with --json', async () => {
      const { now } = threePolls();

      const code = await status(
        NAME,
        { watch: true, json: true },
        { terminal: null, intervalMs: 1, now },
      );

      expect(code).toBe(1);
      const document = JSON.parse(output.out.join('\n'));
      expect(document.status).toBe('FAILED');
      expect(document.steps).toHaveLength(13);
    });

    it('stops watching when aborted and says the execution goes on', async () => {
      // Prepare
      sfn.on(DescribeExecutionCommand).resolves(described(NAME));
      serveHistory(sfn, () => [], 1000);
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 30);

      // Act
      const code = await status(
        NAME,
        { watch: true },
        { terminal: null, intervalMs: 60_000, signal: stop.signal },
      );

      // Assess
      expect(code).toBe(EXIT_INTERRUPTED);
      expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(1);
      expect(output.err).toEqual([
        `stopped watching ${NAME}; it goes on in Step Functions`,
      ]);
    });
  });

  describe('the latest executions', () => {
    it('lists them in a table', async () => {
      // Prepare
      sfn.on(ListExecutionsCommand).resolves({
        executions: [
          {
            executionArn: ARN,
            stateMachineArn: STATE_MACHINE_ARN,
            name: NAME,
            status: 'FAILED',
            startDate: T0,
            stopDate: new Date(T0.getTime() + 2_255_000),
            redriveCount: 1,
          },
        ],
      });

      // Act
      const code = await status(undefined);

      // Assess
      expect(code).toBe(0);
      expect(sfn.commandCalls(ListExecutionsCommand)[0]?.args[0].input).toEqual(
        { stateMachineArn: STATE_MACHINE_ARN, maxResults: 10 },
      );
      const row = output.out.find((line) => line.includes(NAME)) ?? '';
      expect(row.split('│').map((cell) => cell.trim())).toEqual([
        '',
        NAME,
        'FAILED',
        '2025-06-01 12:00:00Z',
        '37m 35s',
        '1',
        '',
      ]);
    });
  });

  describe('usage', () => {
    let error: MockInstance<typeof console.error>;
    beforeEach(() => {
      error = vi.spyOn(console, 'error').mockImplementation(() => {});
      vi.spyOn(console, 'log').mockImplementation(() => {});
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', '');
    });
    afterEach(() => {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    });

    const cli = (...args: string[]) =>
      main(['node', 'sbc-ami', 'status', ...args]);
    const complaints = () => error.mock.calls.join('\n');

    it('exits 2 naming the variable when listing without a state machine', async () => {
      const code = await cli();

      expect(code).toBe(2);
      expect(complaints()).toContain('SBC_AMI_STATE_MACHINE_ARN');
      expect(complaints()).toContain('--state-machine');
      expect(sfn.calls()).toHaveLength(0);
    });

    it('names the variable the missing state machine came from', async () => {
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', STATE_MACHINE_ARN);
      sfn
        .on(ListExecutionsCommand)
        .rejects(
          sfnError('StateMachineDoesNotExist', 'State Machine Does Not Exist'),
        );

      const code = await cli();

      expect(code).toBe(2);
      expect(complaints()).toContain(
        `sbc-ami: SBC_AMI_STATE_MACHINE_ARN=${STATE_MACHINE_ARN}: no such ` +
          'state machine',
      );
      expect(complaints()).not.toContain('--state-machine');
    });

    it('names the variable when an execution named in its state machine is missing', async () => {
      vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', STATE_MACHINE_ARN);
      sfn
        .on(DescribeExecutionCommand)
        .rejects(sfnError('ExecutionDoesNotExist', 'Execution Does Not Exist'));

      const code = await cli(NAME);

      expect(code).toBe(2);
      expect(complaints()).toContain(
        `no execution ${NAME} in state machine sbc-ami-pipeline-prod ` +
          '(eu-west-1, from SBC_AMI_STATE_MACHINE_ARN)',
      );
    });

    it.each([['1'], ['301'], ['soon']])(
      'exits 2 for --interval %s',
      async (value) => {
        const code = await cli(ARN, '--watch', '--interval', value);

        expect(code).toBe(2);
        expect(complaints()).toContain('--interval must be a whole number');
      },
    );

    it('exits 2 for --watch without an execution', async () => {
      const code = await cli('--watch', '--state-machine', STATE_MACHINE_ARN);

      expect(code).toBe(2);
      expect(complaints()).toContain('need an EXECUTION');
    });

    it('exits 2 for an execution ARN from another region than --region', async () => {
      const code = await cli(ARN, '--region', 'us-east-1');

      expect(code).toBe(2);
      expect(complaints()).toContain('--region us-east-1 does not match');
    });

    it('exits 1 through the CLI for a failed execution', async () => {
      const history = smokeFailureHistory();
      sfn.on(DescribeExecutionCommand).resolves(failedExecution(history));
      serveHistory(sfn, () => history.events, 1000);

      const code = await cli(ARN);

      expect(code).toBe(1);
    });
  });
});
