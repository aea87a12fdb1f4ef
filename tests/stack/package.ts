import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '..', '..');

/** What `serverless package` reads from the repository. */
const SERVICE_FILES = [
  'serverless.yml',
  'package.json',
  'tsconfig.json',
  'functions',
  'statemachine',
  // The esbuild options shared with `npm run build` (custom.esbuild.config).
  'scripts/esbuild-options.ts',
];

/** A CloudFormation template, loosely typed: tests look inside it. */
export interface Template {
  Conditions?: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Outputs?: Record<string, unknown>;
}

export interface Resource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form JSON, read field by field in the tests
  Properties?: any;
}

export interface PackagedStack {
  readonly template: Template;
  /** The `--package` folder: the template and one zip per function. */
  readonly packageDir: string;
  /** What `serverless package` printed (stdout and stderr). */
  readonly output: string;
  /** Removes the temporary service copy and its package. */
  readonly dispose: () => Promise<void>;
}

/**
 * Runs `serverless package` on a temporary copy of the service, offline:
 * dummy credentials, no telemetry, no instance metadata, and a proxy on a
 * closed loopback port, so any request that tries the network fails
 * instead of reaching it.
 */
export async function packageStack(
  params: Record<string, string>,
  options: { stage?: string; region?: string } = {},
): Promise<PackagedStack> {
  const work = await mkdtemp(join(tmpdir(), 'sbc-ami-stack-'));
  const dispose = () => rm(work, { recursive: true, force: true });
  try {
    const service = join(work, 'service');
    const home = join(work, 'home');
    await mkdir(home);
    for (const file of SERVICE_FILES) {
      await cp(join(ROOT, file), join(service, file), { recursive: true });
    }
    await symlink(join(ROOT, 'node_modules'), join(service, 'node_modules'));

    const packageDir = join(work, 'package');
    const args = [
      join(ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'),
      'package',
      '--stage',
      options.stage ?? 'test',
      '--region',
      options.region ?? 'eu-west-1',
      '--package',
      packageDir,
      ...Object.entries(params).map(
        ([key, value]) => `--param=${key}=${value}`,
      ),
    ];
    const printed = await run(process.execPath, args, {
      cwd: service,
      env: offlineEnv(home),
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(
        `serverless package failed: ${error.message}\n${error.stdout ?? ''}` +
          `\n${error.stderr ?? ''}`,
        { cause: error },
      );
    });

    const template = JSON.parse(
      await readFile(
        join(packageDir, 'cloudformation-template-update-stack.json'),
        'utf8',
      ),
    ) as Template;
    const output = `${printed.stdout}\n${printed.stderr}`;
    return { template, packageDir, output, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

function offlineEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    CI: '1',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_TRACKING_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    SLS_INTERACTIVE_SETUP_DISABLE: '1',
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '',
  };
}
