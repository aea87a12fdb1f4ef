import type { Command } from 'commander';
import {
  ProfileError,
  ProfileReadError,
  readProfileFile,
  type SipProfile,
} from '../../functions/lib/profile/index.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { RegisterCommand } from '../main.ts';

export interface ValidateProfileOptions {
  json?: boolean;
}

export interface CommandOutput {
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
}

/** One line a person can check at a glance. */
export function summarizeProfile(profile: SipProfile): string {
  const plural = (n: number, word: string) =>
    `${n} ${word}${n === 1 ? '' : 's'}`;
  const ssh =
    profile.admin.sshCidrs.length === 0
      ? 'SSH closed'
      : `SSH from ${plural(profile.admin.sshCidrs.length, 'CIDR')}`;
  return [
    `profile ${profile.name}`,
    `SBC ${profile.sbc.fqdn}`,
    `Genesys ${plural(profile.genesys.signalingPeers.length, 'peer')} over ` +
      profile.genesys.transport,
    plural(profile.carriers.length, 'carrier'),
    `certificate from ${profile.certificate.source}`,
    `RTP ${profile.rtp.portMin}-${profile.rtp.portMax}`,
    `SRTP ${profile.srtp.suites[0]} first`,
    ssh,
  ].join(', ');
}

/**
 * Validates a profile file; resolves to the exit code (0 valid, 1 invalid).
 * An unreadable file is a usage error (exit 2) naming the file.
 */
export async function runValidateProfile(
  file: string,
  options: ValidateProfileOptions,
  output: CommandOutput = {},
): Promise<number> {
  const out = output.out ?? ((text: string) => console.log(text));
  const err = output.err ?? ((text: string) => console.error(text));
  try {
    const { profile, digest } = await readProfileFile(file);
    if (options.json === true) {
      out(
        JSON.stringify({
          valid: true,
          file,
          name: profile.name,
          digest,
          summary: summarizeProfile(profile),
        }),
      );
    } else {
      out(`valid: ${summarizeProfile(profile)} (sha256 ${digest})`);
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ProfileReadError) {
      throw new UsageError(error.message, { cause: error });
    }
    if (!(error instanceof ProfileError)) {
      throw error;
    }
    if (options.json === true) {
      out(JSON.stringify({ valid: false, file, errors: error.problems }));
    } else {
      err(error.message);
      err(`invalid: ${error.problems.length} problem(s) in ${file}`);
    }
    return EXIT_FAILED;
  }
}

/** `sbc-ami validate-profile FILE [--json]`. */
export const registerValidateProfile: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('validate-profile')
    .description('check a SIP profile; every error names its field')
    .argument('<file>', 'the profile (JSON)')
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 valid, 1 invalid, 2 usage error (unreadable file).',
    )
    .action(async (file: string, options: ValidateProfileOptions) => {
      exit(await runValidateProfile(file, options));
    });
};
