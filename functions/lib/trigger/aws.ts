import {
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { csv, readConfig } from '../config.ts';
import { ConfigurationError, throttleAware } from '../errors.ts';
import { ignoredKeyReason } from './events.ts';
import type {
  ExecutionStarter,
  PlannedRun,
  ProfileCatalog,
  ProfileVersion,
  StartOutcome,
  TriggerDeps,
  TriggerSettings,
} from './trigger.ts';

/** Executions of the pipeline's state machine in Step Functions. */
export class SfnExecutionStarter implements ExecutionStarter {
  readonly sfn: SFNClient;
  readonly stateMachineArn: string;

  constructor(sfn: SFNClient, stateMachineArn: string) {
    this.sfn = sfn;
    this.stateMachineArn = stateMachineArn;
  }

  async start(run: PlannedRun): Promise<StartOutcome> {
    try {
      const output = await throttleAware('StartExecution', () =>
        this.sfn.send(
          new StartExecutionCommand({
            stateMachineArn: this.stateMachineArn,
            name: run.name,
            input: JSON.stringify(run.input),
          }),
        ),
      );
      return { outcome: 'started', executionArn: output.executionArn };
    } catch (error) {
      // A Standard workflow keeps a name for 90 days after it closes; the
      // same name means the same trigger, which already has its run.
      if (error instanceof Error && error.name === 'ExecutionAlreadyExists') {
        return { outcome: 'already-started' };
      }
      throw error;
    }
  }
}

/** Profiles as the current versions of objects in the config bucket. */
export class S3ProfileCatalog implements ProfileCatalog {
  readonly s3: S3Client;

  constructor(s3: S3Client) {
    this.s3 = s3;
  }

  async latest(
    bucket: string,
    prefix: string,
    keys: readonly string[],
  ): Promise<{ found: ProfileVersion[]; missing: string[] }> {
    const candidates = keys.length > 0 ? keys : await this.list(bucket, prefix);
    const found: ProfileVersion[] = [];
    const missing: string[] = [];
    for (const key of candidates) {
      const versionId = await this.currentVersion(bucket, key);
      if (versionId === undefined) {
        missing.push(key);
      } else {
        found.push({ key, versionId });
      }
    }
    return { found, missing };
  }

  /** Every profile key under the prefix, following every page. */
  private async list(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const pages = paginateListObjectsV2(
      { client: this.s3 },
      { Bucket: bucket, Prefix: prefix },
    );
    for await (const page of pages) {
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        if (key !== undefined && ignoredKeyReason(key, prefix) === undefined) {
          keys.push(key);
        }
      }
    }
    return keys;
  }

  /** The current version id, or undefined when the object is gone. */
  private async currentVersion(
    bucket: string,
    key: string,
  ): Promise<string | undefined> {
    let versionId: string | undefined;
    try {
      const output = await throttleAware('HeadObject', () =>
        this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
      );
      versionId = output.VersionId;
    } catch (error) {
      if (error instanceof Error && error.name === 'NotFound') {
        return undefined;
      }
      throw error;
    }
    if (versionId === undefined || versionId === 'null') {
      throw new ConfigurationError(
        `s3://${bucket}/${key} has no version id: the config bucket must ` +
          'have versioning enabled',
        { data: { bucket, key } },
      );
    }
    return versionId;
  }
}

/** Profiles are keys under this prefix: relative, ending with `/`. */
const ProfilePrefix = z
  .string()
  .regex(/^[^/].*\/$/, 'a key prefix ending with / (e.g. profiles/)');

const TriggerEnv = z.object({
  STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  CONFIG_BUCKET: z.string().min(3),
  PROFILE_PREFIX: ProfilePrefix.default('profiles/'),
  SCHEDULED_PROFILE_KEYS: csv.default([]),
});

/**
 * The trigger's settings from the environment, read once; a scheduled key
 * that is not a profile under the prefix fails here, named.
 */
export function triggerSettingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): TriggerSettings & { stateMachineArn: string } {
  const config = readConfig(TriggerEnv, env);
  const prefix = config.PROFILE_PREFIX;
  for (const key of config.SCHEDULED_PROFILE_KEYS) {
    const reason = ignoredKeyReason(key, prefix);
    if (reason !== undefined) {
      throw new ConfigurationError(
        `invalid configuration: SCHEDULED_PROFILE_KEYS: ${key} is ${reason}`,
        { data: { variables: ['SCHEDULED_PROFILE_KEYS'] } },
      );
    }
  }
  return {
    stateMachineArn: config.STATE_MACHINE_ARN,
    bucket: config.CONFIG_BUCKET,
    prefix,
    scheduledKeys: config.SCHEDULED_PROFILE_KEYS,
  };
}

/** The trigger wired to AWS, with the given clients (tests) or new ones. */
export function awsTriggerDeps(
  settings: TriggerSettings & { stateMachineArn: string },
  clients: { sfn?: SFNClient; s3?: S3Client } = {},
): TriggerDeps {
  return {
    executions: new SfnExecutionStarter(
      clients.sfn ?? new SFNClient({}),
      settings.stateMachineArn,
    ),
    profiles: new S3ProfileCatalog(clients.s3 ?? new S3Client({})),
    settings: {
      bucket: settings.bucket,
      prefix: settings.prefix,
      scheduledKeys: settings.scheduledKeys,
    },
  };
}

/** The trigger of the deployed stack, from its environment. */
export function triggerDepsFromEnv(): TriggerDeps {
  return awsTriggerDeps(triggerSettingsFromEnv());
}
