import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Command } from 'commander';
import {
  ConfigurationError,
  describeError,
} from '../../functions/lib/errors.ts';
import { localPolicy } from '../../functions/lib/local/deps.ts';
import { localPaths } from '../../functions/lib/local/paths.ts';
import { LocalRegistryPublisher } from '../../functions/lib/local/publisher.ts';
import {
  awsCleanupDeps,
  type CleanupDeps,
  type CleanupReport,
  formatCleanupTable,
  localCleanupDeps,
  policyFromEnv,
  type RetentionPolicy,
  runCleanup,
} from '../../functions/lib/retention/index.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import { AWS_LIMITS_HELP, awsClient, explainAwsError } from '../lib/aws.ts';
import type { RegisterCommand } from '../main.ts';

export interface CleanupCommandOptions {
  dryRun?: boolean;
  apply?: boolean;
  json?: boolean;
  maxDeletes?: string;
  local?: boolean;
  region?: string;
  parameterPrefix?: string;
  project?: string;
}

const DEFAULT_PARAMETER_PREFIX = '/sbc-ami';

const HELP_AFTER = `
Nothing is deleted unless --apply is given: without it (or with --dry-run)
the command lists every candidate with keep or delete and the reasons.

Kept: the published value of each profile and the previous ones, images in
any launch template version, launch configuration or Auto Scaling group, or
used by an instance that is not terminated, images younger than the grace
window, tagged sbc-ami:retain=true, or among the newest validated images of
their profile. Builder leftovers (instances, key pairs, security groups with
a run id) are removed once their build is over and they are old enough.

Policy variables: RETENTION_KEEP_PUBLISHED, RETENTION_KEEP_VALIDATED,
RETENTION_GRACE_HOURS, RETENTION_MAX_DELETES, RETENTION_LEFTOVER_AGE_HOURS,
RETENTION_IN_USE_RETRIES. With --local the grace window is 1 h unless
RETENTION_GRACE_HOURS is set, as in the local pipeline's own cleanup.
AWS: PARAMETER_PREFIX (default /sbc-ami), CODEBUILD_PROJECT, and the usual
AWS region and credentials. ${AWS_LIMITS_HELP}

Exit codes: 0 done (or dry run), 1 something could not be deleted or
listing failed, 2 usage or configuration error.`;

/** `sbc-ami cleanup`: the retention policy, dry run unless `--apply`. */
export const registerCleanup: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('cleanup')
    .description(
      'apply the retention policy to the images this pipeline made and ' +
        'remove builder leftovers (a dry run unless --apply)',
    )
    .option('--dry-run', 'show what would be kept and deleted (the default)')
    .option('--apply', 'delete what the plan marks "delete"')
    .option('--json', 'print the report as JSON')
    .option(
      '--max-deletes <n>',
      'delete at most N images and orphan snapshots this run ' +
        '(default 25, or RETENTION_MAX_DELETES)',
    )
    .option('--local', 'act on the local-mode images (SBC_AMI_HOME)')
    .option('--region <region>', 'AWS region (default: the AWS configuration)')
    .option(
      '--parameter-prefix <path>',
      'SSM path of the published parameters (default: PARAMETER_PREFIX or ' +
        `${DEFAULT_PARAMETER_PREFIX})`,
    )
    .option(
      '--project <name>',
      'CodeBuild project that runs the builds (default: CODEBUILD_PROJECT)',
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (options: CleanupCommandOptions) => {
      exit(await runCleanupCommand(options));
    });
};

export interface CleanupCommandContext {
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: Date;
  /** Overrides of the adapters' retry delays (tests). */
  readonly retryDelayMs?: number;
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
}

/** Runs the cleanup and prints the report; resolves to the exit code. */
export async function runCleanupCommand(
  options: CleanupCommandOptions,
  context: CleanupCommandContext = {},
): Promise<number> {
  const env = context.env ?? process.env;
  const out = context.out ?? ((text: string) => console.log(text));
  const err = context.err ?? ((text: string) => console.error(text));
  if (options.dryRun === true && options.apply === true) {
    throw new UsageError('pass --dry-run or --apply, not both');
  }
  const policy = readPolicy(options, env);
  const progress = options.json
    ? undefined
    : (line: string) => err(`cleanup: ${line}`);
  const deps = options.local
    ? localDeps(options, env, progress)
    : await awsDeps(options, env, progress, context.retryDelayMs);

  const report = await runCleanup(deps, {
    dryRun: options.apply !== true,
    policy,
    now: context.now,
  });

  out(
    options.json ? JSON.stringify(report, null, 2) : formatCleanupTable(report),
  );
  return verdict(report);
}

function readPolicy(
  options: CleanupCommandOptions,
  env: NodeJS.ProcessEnv,
): RetentionPolicy {
  let maxDeletes: number | undefined;
  if (options.maxDeletes !== undefined) {
    if (!/^\d+$/.test(options.maxDeletes.trim())) {
      throw new UsageError(
        `--max-deletes must be a whole number (0 or more), got ` +
          `"${options.maxDeletes}"`,
      );
    }
    maxDeletes = Number(options.maxDeletes);
  }
  try {
    // The plan of --local must be the one the next local run carries out.
    const policy = options.local ? localPolicy(env) : policyFromEnv(env);
    return maxDeletes === undefined ? policy : { ...policy, maxDeletes };
  } catch (error) {
    throw asUsage(error);
  }
}

function localDeps(
  options: CleanupCommandOptions,
  env: NodeJS.ProcessEnv,
  progress: ((line: string) => void) | undefined,
): CleanupDeps {
  for (const [flag, value] of [
    ['--region', options.region],
    ['--parameter-prefix', options.parameterPrefix],
    ['--project', options.project],
  ] as const) {
    if (value !== undefined) {
      throw new UsageError(`${flag} does not apply to --local`);
    }
  }
  const paths = localPaths(env.SBC_AMI_HOME);
  return localCleanupDeps({
    paths,
    publisher: new LocalRegistryPublisher(paths.registry),
    progress,
  });
}

async function awsDeps(
  options: CleanupCommandOptions,
  env: NodeJS.ProcessEnv,
  progress: ((line: string) => void) | undefined,
  retryDelayMs: number | undefined,
): Promise<CleanupDeps> {
  const projectName = options.project ?? env.CODEBUILD_PROJECT;
  if (projectName === undefined || projectName.trim() === '') {
    throw new UsageError(
      'the CodeBuild project is unknown: pass --project NAME or set ' +
        'CODEBUILD_PROJECT (cleanup asks it which builds still run)',
    );
  }
  if (options.region !== undefined && options.region.trim() === '') {
    throw new UsageError('--region must name an AWS region');
  }
  const config = options.region === undefined ? {} : { region: options.region };
  const clients = {
    ec2: awsClient(EC2Client, config, env),
    autoScaling: awsClient(AutoScalingClient, config, env),
    ssm: awsClient(SSMClient, config, env),
    codeBuild: awsClient(CodeBuildClient, config, env),
  };
  let deps: CleanupDeps;
  try {
    deps = awsCleanupDeps({
      region: options.region,
      clients,
      parameterPrefix:
        options.parameterPrefix ??
        env.PARAMETER_PREFIX ??
        DEFAULT_PARAMETER_PREFIX,
      projectName,
      progress,
      ...(retryDelayMs === undefined
        ? {}
        : {
            deletion: { retryDelayMs, maxRetryDelayMs: retryDelayMs },
            leftoverRetryDelayMs: retryDelayMs,
          }),
    });
  } catch (error) {
    if (
      error instanceof ConfigurationError &&
      error.data.field === 'parameterPrefix'
    ) {
      throw new UsageError(`--parameter-prefix: ${error.message}`);
    }
    throw asUsage(error);
  }
  try {
    // Known before listing starts: four services would each say it is missing.
    await clients.ec2.config.region();
  } catch (error) {
    throw explainAwsError(error) ?? error;
  }
  return deps;
}

function verdict(report: CleanupReport): number {
  const problems = report.failed.length + report.leftovers.leftBehind.length;
  return problems > 0 ? EXIT_FAILED : EXIT_OK;
}

function asUsage(error: unknown): unknown {
  return error instanceof ConfigurationError
    ? new UsageError(describeError(error))
    : error;
}
