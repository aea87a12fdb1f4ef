import { userInfo } from 'node:os';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { ExecutionRef } from './target.ts';

/** Statuses after which an execution does no more work. */
const ENDED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);
/** Statuses of an execution that did not succeed. */
const UNSUCCESSFUL = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);

/** True when the execution has ended, whatever the outcome. */
export function hasEnded(status: string | undefined): boolean {
  return ENDED.has(status ?? '');
}

/** True when the execution ended without success. */
export function isUnsuccessful(status: string | undefined): boolean {
  return UNSUCCESSFUL.has(status ?? '');
}

/** 1 for an execution that failed, timed out or was aborted; else 0. */
export function exitCodeOf(status: string | undefined): number {
  return isUnsuccessful(status) ? EXIT_FAILED : EXIT_OK;
}

/** True when an AWS SDK error has this name (a service exception class). */
export function isAwsError(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/**
 * DescribeExecution. A name or ARN that names no execution is the user's
 * mistake: a usage error.
 */
export async function describeExecution(
  client: SFNClient,
  execution: ExecutionRef,
): Promise<DescribeExecutionCommandOutput> {
  try {
    return await client.send(
      new DescribeExecutionCommand({ executionArn: execution.arn }),
    );
  } catch (error) {
    if (isAwsError(error, 'ExecutionDoesNotExist')) {
      // A name is looked up in the configured state machine: say which.
      const from =
        execution.stateMachine === undefined
          ? ''
          : `, from ${execution.stateMachine.source}`;
      throw new UsageError(
        `no execution ${execution.name} in state machine ` +
          `${execution.stateMachineName} (${execution.region}${from})`,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * The readable part of an error's cause. A Lambda error arrives as JSON
 * (`errorType`, `errorMessage`, `trace`); only the message is for a person.
 */
export function readableCause(cause: string | undefined): string | undefined {
  if (cause === undefined || cause.trim() === '') {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(cause);
    if (typeof parsed === 'object' && parsed !== null) {
      const message = (parsed as { errorMessage?: unknown }).errorMessage;
      if (typeof message === 'string') {
        return message;
      }
    }
  } catch {
    // Not JSON: a Fail state's CausePath or a plain service message.
  }
  return cause;
}

/** `Error: cause`, or whichever of the two is known. */
export function describeFailure(
  error: string | undefined,
  cause: string | undefined,
): string | undefined {
  const readable = readableCause(cause);
  if (error === undefined || error === '') {
    return readable;
  }
  return readable === undefined ? error : `${error}: ${readable}`;
}

/**
 * Who asks for a deliberate run, for the execution input. The account
 * name of this machine; nothing when it cannot be read (some containers
 * have no passwd entry for their uid).
 */
export function requester(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const name = userInfo().username;
    if (name !== '') {
      return name;
    }
  } catch {
    // Fall through to the environment.
  }
  const name = env.USER ?? env.LOGNAME;
  return name === undefined || name === '' ? undefined : name;
}
