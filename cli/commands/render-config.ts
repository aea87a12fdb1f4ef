import type { Command } from 'commander';
import {
  ProfileError,
  ProfileReadError,
  readProfileFile,
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { RegisterCommand } from '../main.ts';
import type { CommandOutput } from './validate-profile.ts';

export interface RenderConfigOptions {
  out: string;
  smokeTestSource?: string[];
}

/**
 * Renders the image's config tree from a profile into `options.out`;
 * resolves to the exit code (0 written, 1 invalid profile).
 */
export async function runRenderConfig(
  file: string,
  options: RenderConfigOptions,
  output: CommandOutput = {},
): Promise<number> {
  const out = output.out ?? ((text: string) => console.log(text));
  const err = output.err ?? ((text: string) => console.error(text));
  let rendered: ReturnType<typeof renderProfile>;
  let digest: string;
  try {
    const read = await readProfileFile(file);
    digest = read.digest;
    rendered = renderProfile(read.profile, {
      smokeTestSources: options.smokeTestSource ?? [],
    });
  } catch (error) {
    if (error instanceof ProfileReadError) {
      throw new UsageError(error.message, { cause: error });
    }
    if (error instanceof ProfileError && error.source === 'render options') {
      throw new UsageError(
        error.problems
          .map((p) => `--smoke-test-source: ${p.path}: ${p.message}`)
          .join('\n'),
        { cause: error },
      );
    }
    if (error instanceof ProfileError) {
      err(error.message);
      return EXIT_FAILED;
    }
    throw error;
  }

  await writeRenderedTree(options.out, rendered);
  for (const file of rendered) {
    out(`${file.mode.toString(8).padStart(4, '0')} ${file.path}`);
  }
  err(
    `rendered ${rendered.length} files into ${options.out} ` +
      `(profile sha256 ${digest})`,
  );
  return EXIT_OK;
}

/** `sbc-ami render-config FILE --out DIR [--smoke-test-source CIDR...]`. */
export const registerRenderConfig: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('render-config')
    .description("render the image's config files from a SIP profile")
    .argument('<file>', 'the profile (JSON)')
    .requiredOption('--out <dir>', 'root of the rendered tree (etc/...)')
    .option(
      '--smoke-test-source <cidr...>',
      'extra sources allowed to reach SIP (the smoke test)',
    )
    .addHelpText(
      'after',
      '\nPrints each file written with its mode. Exit codes: 0 written, ' +
        '1 invalid profile, 2 usage error.',
    )
    .action(async (file: string, options: RenderConfigOptions) => {
      exit(await runRenderConfig(file, options));
    });
};
