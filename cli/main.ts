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

/** Runs the CLI and resolves to its exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((actionCode) => {
    code = actionCode;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other commander error is usage.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      console.error(`sbc-ami: ${error.message}`);
      return EXIT_USAGE;
    }
    console.error(`sbc-ami: ${describeError(error)}`);
    return EXIT_FAILED;
  }
}
