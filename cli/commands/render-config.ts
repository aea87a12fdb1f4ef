import { lstat, readdir } from 'node:fs/promises';
import { join, parse, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  ProfileError,
  type ProfileProblem,
  ProfileReadError,
  type RenderedFile,
  readProfileFile,
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { RegisterCommand } from '../main.ts';
import type { CommandOutput } from './validate-profile.ts';

export interface RenderConfigOptions {
  out?: string;
  smokeTestSource?: string[];
  json?: boolean;
}

const HELP_AFTER = `
--out is the root of the tree: etc/kamailio/kamailio.cfg lands in
DIR/etc/kamailio/kamailio.cfg. It must be a new directory, an empty one, or
one holding nothing but files this command writes (a previous render, which
is overwritten). Anything else is refused, the filesystem root first: the
tree would replace this machine's own /etc/nftables.conf, sshd and Kamailio
configuration.

Prints each file written with its mode. Exit codes: 0 written, 1 invalid
profile, 2 usage error.`;

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
  const target = await checkOutDir(options.out);

  let rendered: RenderedFile[];
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
          .map((problem) => flagProblem(problem, options.smokeTestSource))
          .join('\n'),
        { cause: error },
      );
    }
    if (error instanceof ProfileError) {
      if (options.json === true) {
        out(JSON.stringify({ ok: false, file, errors: error.problems }));
      } else {
        err(error.message);
      }
      return EXIT_FAILED;
    }
    throw error;
  }

  if (target.exists) {
    await checkPreviousRender(target, rendered);
  }
  await writeTree(target, rendered);

  const files = rendered.map((item) => ({
    path: item.path,
    mode: item.mode.toString(8).padStart(4, '0'),
  }));
  if (options.json === true) {
    out(
      JSON.stringify(
        { ok: true, file, digest, out: target.root, files },
        null,
        2,
      ),
    );
    return EXIT_OK;
  }
  for (const item of files) {
    out(`${item.mode} ${item.path}`);
  }
  err(
    `rendered ${rendered.length} files into ${target.text} ` +
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
    .requiredOption(
      '--out <dir>',
      'root of the rendered tree (etc/...): new, empty, or a previous render',
    )
    .option(
      '--smoke-test-source <cidr...>',
      'extra sources allowed to reach SIP (the smoke test)',
    )
    .option('--json', 'print the files written as JSON')
    .addHelpText('after', HELP_AFTER)
    .action(async (file: string, options: RenderConfigOptions) => {
      exit(await runRenderConfig(file, options));
    });
};

interface OutDir {
  /** As typed, for messages. */
  readonly text: string;
  readonly root: string;
  readonly exists: boolean;
}

/** `--out` names a directory that may receive a tree; else usage. */
async function checkOutDir(text: string | undefined): Promise<OutDir> {
  if (text === undefined || text.trim() === '') {
    throw new UsageError(
      '--out must name the directory to render into (a new or empty one)',
    );
  }
  const root = resolve(text);
  if (root === parse(root).root) {
    throw new UsageError(
      `--out ${text} is the filesystem root: the tree would overwrite this ` +
        "machine's /etc (nftables.conf, sshd and Kamailio configuration)",
    );
  }
  let isDirectory: boolean;
  let isLink: boolean;
  try {
    const info = await lstat(root);
    isDirectory = info.isDirectory();
    isLink = info.isSymbolicLink();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return { text, root, exists: false };
    }
    throw outError(text, error);
  }
  if (isLink) {
    throw new UsageError(
      `--out ${text} is a symbolic link: give the directory itself`,
    );
  }
  if (!isDirectory) {
    throw new UsageError(`--out ${text} is a file, not a directory`);
  }
  return { text, root, exists: true };
}

/**
 * An existing `--out` may hold only what this render writes: its folders
 * and regular files at the same paths. A symbolic link is refused too, as
 * writing through it would land outside the tree.
 */
async function checkPreviousRender(
  target: OutDir,
  rendered: readonly RenderedFile[],
): Promise<void> {
  const files = new Set(rendered.map((item) => item.path));
  const folders = new Set<string>();
  for (const path of files) {
    const parts = path.split('/');
    for (let end = 1; end < parts.length; end += 1) {
      folders.add(parts.slice(0, end).join('/'));
    }
  }

  const pending = [target.root];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (error) {
      throw outError(target.text, error);
    }
    for (const name of entries) {
      const full = join(dir, name);
      const path = relative(target.root, full);
      const info = await lstat(full);
      if (info.isDirectory() && folders.has(path)) {
        pending.push(full);
      } else if (!(info.isFile() && files.has(path))) {
        throw new UsageError(
          `--out ${target.text} holds ${path}, which render-config does ` +
            'not write: give a new or empty directory, or one holding a ' +
            'previous render',
        );
      }
    }
  }
}

/** Errors that mean `--out` cannot be written, not that rendering failed. */
const OUT_PROBLEMS = new Set([
  'ENOTDIR',
  'EEXIST',
  'EISDIR',
  'EACCES',
  'EPERM',
  'EROFS',
  'ELOOP',
]);

async function writeTree(
  target: OutDir,
  rendered: readonly RenderedFile[],
): Promise<void> {
  try {
    await writeRenderedTree(target.root, rendered);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw OUT_PROBLEMS.has(code) ? outError(target.text, error) : error;
  }
}

function outError(text: string, error: unknown): UsageError {
  const { code, path } = error as NodeJS.ErrnoException;
  const meaning =
    code === 'ENOTDIR'
      ? 'a part of the path is a file, not a directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : 'cannot write there';
  const at = path === undefined ? '' : ` at ${path}`;
  return new UsageError(`--out ${text}: ${meaning} (${code}${at})`, {
    cause: error,
  });
}

/** A render option problem, named by the flag and the value typed. */
function flagProblem(
  problem: ProfileProblem,
  given: readonly string[] | undefined,
): string {
  const index = /^smokeTestSources\[(\d+)\]$/.exec(problem.path)?.[1];
  const value = index === undefined ? undefined : given?.[Number(index)];
  return value === undefined
    ? `--smoke-test-source: ${problem.message}`
    : `--smoke-test-source ${JSON.stringify(value)}: ${problem.message}`;
}
