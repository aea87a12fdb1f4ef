import { join } from 'node:path';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
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
import { STATE_MACHINE_ARN, sfnError } from './fixtures.ts';
import { REPO } from './processes.ts';

const sfn = mockClient(SFNClient);

const PROFILE = join(REPO, 'examples', 'profiles', 'genesys-byoc.json');

/** Usage errors of every command this suite can run without a machine. */
const USAGE_ERRORS: readonly [string, string[], string][] = [
  ['a missing argument', ['probe'], "missing required argument 'host'"],
  ['an unknown option', ['status', '--nope'], "unknown option '--nope'"],
  ['an unknown command', ['nope'], "unknown command 'nope'"],
  [
    'a bad number',
    ['probe', '127.0.0.1', '--timeout', '-1'],
    '--timeout: must be a whole number of milliseconds from 1 to 600000',
  ],
  [
    'a missing required option',
    ['render-config', PROFILE],
    "required option '--out <dir>' not specified",
  ],
  [
    'an empty --out',
    ['render-config', PROFILE, '--out', ''],
    '--out must name the directory',
  ],
  [
    'exclusive flags',
    ['cleanup', '--local', '--dry-run', '--apply'],
    'pass --dry-run or --apply, not both',
  ],
  ['no state machine', ['status'], 'pass --state-machine ARN or set'],
  [
    'no state machine to run',
    ['run', 'profiles/x.json'],
    'SBC_AMI_STATE_MACHINE_ARN',
  ],
  [
    'no state machine for a name',
    ['rerun', 'genesys-euw1-s3-5d41402abc4b2a76'],
    'SBC_AMI_STATE_MACHINE_ARN',
  ],
  [
    'an unreadable file',
    ['validate-profile', '/nonexistent/profile.json'],
    'cannot read /nonexistent/profile.json (ENOENT)',
  ],
];

describe('main', () => {
  let log: MockInstance<typeof console.log>;
  let error: MockInstance<typeof console.error>;
  let stderr: MockInstance<typeof process.stderr.write>;
  beforeEach(() => {
    sfn.reset();
    log = vi.spyOn(console, 'log').mockImplementation(() => {});
    error = vi.spyOn(console, 'error').mockImplementation(() => {});
    // Commander writes its own complaints and help here.
    stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.stubEnv('SBC_AMI_STATE_MACHINE_ARN', '');
    vi.stubEnv('SBC_AMI_CONFIG_BUCKET', 'sbc-ami-config-prod');
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  const stdout = () => log.mock.calls.map((call) => String(call[0])).join('\n');
  const complaints = () =>
    [
      ...error.mock.calls.map((call) => String(call[0])),
      ...stderr.mock.calls.map((call) => String(call[0])),
    ].join('');

  describe('with --json', () => {
    it.each(USAGE_ERRORS)(
      'prints %s as a JSON usage error on stdout, exit 2',
      async (_, args, message) => {
        // Act
        const code = await main(['node', 'sbc-ami', ...args, '--json']);

        // Assess
        expect(code).toBe(2);
        expect(JSON.parse(stdout())).toEqual({
          ok: false,
          error: { code: 'usage', message: expect.stringContaining(message) },
        });
        expect(complaints()).toBe('');
      },
    );

    it('prints a failure as a JSON failed error on stdout, exit 1', async () => {
      // Prepare
      sfn
        .on(ListExecutionsCommand)
        .rejects(sfnError('AccessDeniedException', 'not authorized'));

      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'status',
        '--state-machine',
        STATE_MACHINE_ARN,
        '--json',
      ]);

      // Assess
      expect(code).toBe(1);
      expect(JSON.parse(stdout())).toEqual({
        ok: false,
        error: {
          code: 'failed',
          message: 'AWS: AccessDeniedException: not authorized',
        },
      });
      expect(sfn.commandCalls(ListExecutionsCommand)).toHaveLength(1);
      expect(complaints()).toBe('');
    });

    it('reads a --json after -- as an argument, not the flag', async () => {
      // Act
      const code = await main([
        'node',
        'sbc-ami',
        'validate-profile',
        '--',
        '--json',
      ]);

      // Assess
      expect(code).toBe(2);
      expect(stdout()).toBe('');
      expect(complaints()).toContain('cannot read --json');
    });
  });

  describe('without --json', () => {
    it.each(USAGE_ERRORS)(
      'says %s on stderr, exit 2, nothing on stdout',
      async (_, args, message) => {
        // Act
        const code = await main(['node', 'sbc-ami', ...args]);

        // Assess
        expect(code).toBe(2);
        expect(stdout()).toBe('');
        expect(complaints()).toContain(message);
      },
    );
  });
});
