import { Command, CommanderError } from 'commander';
import { describeError } from '../functions/lib/errors.ts';
import { registerCleanup } from './commands/cleanup.ts';
import { registerLocal } from './commands/local.ts';
import { registerProbe } from './commands/probe.ts';
import { registerRenderConfig } from './commands/render-config.ts';
import { registerRerun } from './commands/rerun.ts';
import { registerRun } from './commands/run.ts';
import { registerStatus } from './commands/status.ts';
import { registerValidateProfile } from './commands/validate-profile.ts';
import { registerVerify } from './commands/verify.ts';
import { EXIT_FAILED, EXIT_USAGE, UsageError } from './exit.ts';
import { AwsCallError, explainAwsError } from './lib/aws.ts';

/**
 * A command module adds one subcommand to the program. Its action hands its
 * exit code to `exit`; throwing `UsageError` means exit 2.
 */
export type RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => void;

const COMMANDS: RegisterCommand[] = [
  registerLocal,
  registerRun,
  registerRerun,
  registerStatus,
  registerProbe,
  registerVerify,
  registerCleanup,
  registerValidateProfile,
  registerRenderConfig,
];

/** The `sbc-ami` program with every subcommand registered. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('sbc-ami')
    .description('Hardened, tested, signed SBC images for SIP trunks')
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) {
    register(program, exit);
  }
  return program;
}

/** What went wrong, as `--json` prints it and with the exit code it gives. */
export interface CliError {
  readonly ok: false;
  readonly error: {
    /** `usage`: exit 2, a flag or setting to fix; `failed`: exit 1. */
    readonly code: 'usage' | 'failed';
    readonly message: string;
  };
}

/**
 * Runs the CLI and resolves to its exit code. An error ends it with a line
 * on standard error, or with `--json` a `CliError` on standard output, so
 * a script reading the output always gets JSON.
 */
export async function main(argv: string[]): Promise<number> {
  const json = wantsJson(argv);
  let code = 0;
  const program = buildProgram((actionCode) => {
    code = actionCode;
  });
  if (json) {
    // Commander's own complaint (and the help after it) becomes the JSON.
    for (const command of [program, ...program.commands]) {
      command.configureOutput({ writeErr: () => {}, outputError: () => {} });
    }
  }
  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) {
      return 0; // --help
    }
    const failure = cliError(error);
    if (json) {
      console.log(JSON.stringify(failure, null, 2));
    } else if (!(error instanceof CommanderError)) {
      // Commander has already said what is wrong, with the help.
      console.error(`sbc-ami: ${failure.error.message}`);
    }
    return failure.error.code === 'usage' ? EXIT_USAGE : EXIT_FAILED;
  }
}

/** Any error a command throws, as usage or failure. */
export function cliError(error: unknown): CliError {
  if (error instanceof CommanderError) {
    return failure('usage', error.message.replace(/^error: /, ''));
  }
  const explained =
    error instanceof UsageError ? error : explainAwsError(error);
  if (explained instanceof UsageError) {
    return failure('usage', explained.message);
  }
  if (explained instanceof AwsCallError) {
    return failure('failed', explained.message);
  }
  return failure('failed', describeError(error));
}

function failure(code: 'usage' | 'failed', message: string): CliError {
  return { ok: false, error: { code, message } };
}

/** `--json` among the arguments, before a `--` that ends the options. */
function wantsJson(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}
