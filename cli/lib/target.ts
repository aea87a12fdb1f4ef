import { SFNClient } from '@aws-sdk/client-sfn';
import { UsageError } from '../exit.ts';
import { AWS_LIMITS_HELP, awsClient } from './aws.ts';

/** The deployed state machine, when `--state-machine` is not given. */
export const STATE_MACHINE_VARIABLE = 'SBC_AMI_STATE_MACHINE_ARN';
/** The bucket that holds the SIP profiles, when `--bucket` is not given. */
export const CONFIG_BUCKET_VARIABLE = 'SBC_AMI_CONFIG_BUCKET';

/** Help text shared by the commands that talk to the deployed pipeline. */
export const TARGET_HELP = `
Configuration (a flag wins over its variable):
  --state-machine ARN  or ${STATE_MACHINE_VARIABLE}
  --bucket NAME        or ${CONFIG_BUCKET_VARIABLE} (run only)
  --region REGION      default: the region in the ARN, which it must match
Credentials come from the usual AWS chain (AWS_PROFILE, environment, SSO,
instance role). ${AWS_LIMITS_HELP}`;

/** A state machine ARN, taken apart. */
export interface StateMachineRef {
  readonly arn: string;
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  /** The state machine's name, without a version or alias qualifier. */
  readonly name: string;
  /** Where the ARN came from: `--state-machine` or the variable. */
  readonly source: string;
}

/** `--state-machine ARN` or `SBC_AMI_STATE_MACHINE_ARN=ARN`, for messages. */
export function stateMachineLabel(machine: StateMachineRef): string {
  return machine.source.startsWith('--')
    ? `${machine.source} ${machine.arn}`
    : `${machine.source}=${machine.arn}`;
}

/** An execution ARN, taken apart. */
export interface ExecutionRef {
  readonly arn: string;
  readonly region: string;
  readonly stateMachineName: string;
  readonly name: string;
  /** The state machine it was named in, when given by name. */
  readonly stateMachine?: StateMachineRef;
}

// Names are at most 80 of these characters in what this pipeline creates.
const NAME = '[A-Za-z0-9_-]{1,80}';
const STATE_MACHINE_ARN = new RegExp(
  `^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\\d{12}):stateMachine:(${NAME})` +
    '(?::[A-Za-z0-9_.-]{1,80})?$',
);
const EXECUTION_ARN = new RegExp(
  `^arn:aws[a-z-]*:states:([a-z0-9-]+):\\d{12}:execution:(${NAME}):(${NAME})$`,
);
const EXECUTION_NAME = new RegExp(`^${NAME}$`);
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * The state machine: `--state-machine`, else the variable. Missing or
 * malformed, it is a configuration error naming both.
 */
export function resolveStateMachine(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): StateMachineRef {
  const fromEnv = nonEmpty(env[STATE_MACHINE_VARIABLE]);
  const text = nonEmpty(flag) ?? fromEnv;
  if (text === undefined) {
    throw new UsageError(
      'the state machine is unknown: pass --state-machine ARN or set ' +
        STATE_MACHINE_VARIABLE,
    );
  }
  const source =
    nonEmpty(flag) === undefined ? STATE_MACHINE_VARIABLE : '--state-machine';
  const match = STATE_MACHINE_ARN.exec(text);
  if (match === null) {
    throw new UsageError(
      `${source}: "${text}" is not a state machine ARN ` +
        '(arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)',
    );
  }
  const [, partition, region, account, name] = match as unknown as string[];
  return {
    arn: text,
    partition: partition as string,
    region: region as string,
    account: account as string,
    name: name as string,
    source,
  };
}

/** The profile bucket: `--bucket`, else the variable. */
export function resolveConfigBucket(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): string {
  const text = nonEmpty(flag) ?? nonEmpty(env[CONFIG_BUCKET_VARIABLE]);
  if (text === undefined) {
    throw new UsageError(
      'the config bucket is unknown: pass --bucket NAME or set ' +
        CONFIG_BUCKET_VARIABLE,
    );
  }
  if (!BUCKET_NAME.test(text)) {
    const source =
      nonEmpty(flag) === undefined ? CONFIG_BUCKET_VARIABLE : '--bucket';
    throw new UsageError(`${source}: "${text}" is not an S3 bucket name`);
  }
  return text;
}

/** True when the text looks like an execution ARN rather than a name. */
export function isArn(text: string): boolean {
  return text.startsWith('arn:');
}

/**
 * An execution given by ARN, or by name within the configured state
 * machine (read only when a name needs it).
 */
export function resolveExecution(
  text: string,
  stateMachine: () => StateMachineRef,
): ExecutionRef {
  if (isArn(text)) {
    const match = EXECUTION_ARN.exec(text);
    if (match === null) {
      throw new UsageError(
        `"${text}" is not an execution ARN ` +
          '(arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)',
      );
    }
    const [, region, stateMachineName, name] = match as unknown as string[];
    return {
      arn: text,
      region: region as string,
      stateMachineName: stateMachineName as string,
      name: name as string,
    };
  }
  if (!EXECUTION_NAME.test(text)) {
    throw new UsageError(
      `"${text}" is not an execution name (1 to 80 of A-Z a-z 0-9 - _) ` +
        'nor an execution ARN',
    );
  }
  let machine: StateMachineRef;
  try {
    machine = stateMachine();
  } catch (error) {
    if (error instanceof UsageError) {
      throw new UsageError(
        `${error.message}, or give the execution's ARN instead of its name`,
      );
    }
    throw error;
  }
  return {
    arn: executionArn(machine, text),
    region: machine.region,
    stateMachineName: machine.name,
    name: text,
    stateMachine: machine,
  };
}

/** The ARN Step Functions gives the execution `name` of `machine`. */
export function executionArn(machine: StateMachineRef, name: string): string {
  return (
    `arn:${machine.partition}:states:${machine.region}:${machine.account}:` +
    `execution:${machine.name}:${name}`
  );
}

/**
 * The region to call: the ARN's. `--region` is accepted when it agrees, so
 * a script that always passes it keeps working.
 */
export function resolveRegion(
  flag: string | undefined,
  arnRegion: string,
): string {
  const region = nonEmpty(flag);
  if (region !== undefined && region !== arnRegion) {
    throw new UsageError(
      `--region ${region} does not match the ARN's region ${arnRegion}`,
    );
  }
  return arnRegion;
}

/**
 * The Step Functions client. Throttling and transient faults are retried by
 * the SDK's standard retry strategy (3 attempts, backoff with jitter), each
 * attempt bounded in time (`awsClient`).
 */
export function sfnClient(region: string, env: NodeJS.ProcessEnv): SFNClient {
  return awsClient(SFNClient, { region }, env);
}

function nonEmpty(text: string | undefined): string | undefined {
  const trimmed = text?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
