import type {
  HandlerExecutionContext,
  InitializeMiddleware,
  MiddlewareStack,
} from '@smithy/types';
import { z } from 'zod';
import { readConfig } from '../../functions/lib/config.ts';
import { ConfigurationError } from '../../functions/lib/errors.ts';
import { UsageError } from '../exit.ts';

/** Seconds one attempt of an AWS call may take, when not the default. */
export const AWS_TIMEOUT_VARIABLE = 'SBC_AMI_AWS_TIMEOUT_SECONDS';

/** How long the CLI waits for AWS, per attempt of a call. */
export interface AwsCallLimits {
  /** To open the connection (TCP and TLS). */
  readonly connectionTimeoutMs: number;
  /** For the whole attempt, connecting included. */
  readonly requestTimeoutMs: number;
  /** Attempts of one call: the SDK's standard retry strategy. */
  readonly maxAttempts: number;
}

/**
 * A person waits at the terminal: an endpoint that accepts and never
 * answers must not hold the command for the SDK's 15-minute socket default.
 * 30 s leaves room for a long execution history page on a slow link.
 */
const DEFAULT_TIMEOUT_SECONDS = 30;
const MAX_CONNECTION_TIMEOUT_MS = 5_000;
const MAX_ATTEMPTS = 3;

/** Help text for the commands that call AWS. */
export const AWS_LIMITS_HELP =
  `Each AWS call gives up after ${MAX_ATTEMPTS} attempts of at most ` +
  `${DEFAULT_TIMEOUT_SECONDS} s each\n(${AWS_TIMEOUT_VARIABLE} changes the ` +
  `${DEFAULT_TIMEOUT_SECONDS} s).`;

const LimitsEnv = z.object({
  [AWS_TIMEOUT_VARIABLE]: z.preprocess(
    (value) =>
      typeof value === 'string' && value.trim() === '' ? undefined : value,
    z.coerce.number().int().min(1).max(600).optional(),
  ),
});

/** The per-attempt bounds from the environment; a bad value is usage. */
export function awsCallLimits(env: NodeJS.ProcessEnv): AwsCallLimits {
  let seconds: number | undefined;
  try {
    seconds = readConfig(LimitsEnv, env)[AWS_TIMEOUT_VARIABLE];
  } catch (error) {
    if (error instanceof ConfigurationError) {
      const given = JSON.stringify(env[AWS_TIMEOUT_VARIABLE]);
      throw new UsageError(
        `${AWS_TIMEOUT_VARIABLE}: ${given} must be a whole number of ` +
          'seconds from 1 to 600',
        { cause: error },
      );
    }
    throw error;
  }
  const requestTimeoutMs = (seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  return {
    connectionTimeoutMs: Math.min(MAX_CONNECTION_TIMEOUT_MS, requestTimeoutMs),
    requestTimeoutMs,
    maxAttempts: MAX_ATTEMPTS,
  };
}

/** What `awsClient` needs of an AWS SDK v3 client. */
export interface SdkClient<I extends object, O extends object> {
  readonly middlewareStack: MiddlewareStack<I, O>;
}

/** Which call an SDK error came from, recorded by the client's middleware. */
interface CallRecord {
  /** `states:ListExecutions`, the form IAM policies use. */
  readonly call: string;
  readonly endpoint?: string;
  readonly limits: AwsCallLimits;
}

const CALLS = new WeakMap<object, CallRecord>();

/** IAM service prefixes whose client name does not give them. */
const SERVICE_PREFIXES: Readonly<Record<string, string>> = {
  SFN: 'states',
};

/**
 * An SDK client for the CLI: every attempt of every call bounded by
 * `awsCallLimits`, and its errors marked with the call they come from, so
 * `explainAwsError` can name it.
 */
export function awsClient<
  I extends object,
  O extends object,
  C extends SdkClient<I, O>,
  Config extends object,
>(
  Client: new (config: Config) => C & SdkClient<I, O>,
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): C {
  const limits = awsCallLimits(env);
  const client = new Client({
    ...config,
    maxAttempts: limits.maxAttempts,
    // The SDK builds its Node handler from these options.
    requestHandler: {
      connectionTimeout: limits.connectionTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  client.middlewareStack.add(nameTheCall<I, O>(limits), {
    step: 'initialize',
    name: 'sbcAmiNameTheCall',
  });
  return client;
}

/** Marks an error with the call it ended, once, as it leaves the stack. */
function nameTheCall<I extends object, O extends object>(
  limits: AwsCallLimits,
): InitializeMiddleware<I, O> {
  return (next, context) => async (args) => {
    try {
      return await next(args);
    } catch (error) {
      if (typeof error === 'object' && error !== null && !CALLS.has(error)) {
        CALLS.set(error, {
          call: callName(context),
          endpoint: context.endpointV2?.url?.origin,
          limits,
        });
      }
      throw error;
    }
  };
}

function callName(context: HandlerExecutionContext): string {
  const client = (context.clientName ?? 'AWS').replace(/Client$/, '');
  const service = SERVICE_PREFIXES[client] ?? client.toLowerCase();
  const operation = (context.commandName ?? 'call').replace(/Command$/, '');
  return `${service}:${operation}`;
}

/** An AWS call failed for a reason that is not the configuration (exit 1). */
export class AwsCallError extends Error {
  override name = 'AwsCallError';
  /** The call that failed, `states:ListExecutions`, when known. */
  readonly call: string | undefined;

  constructor(message: string, call: string | undefined, cause: unknown) {
    super(message, { cause });
    this.call = call;
  }
}

/** Errors of the AWS services that mean "this target does not exist". */
const TARGET_ERRORS: Readonly<Record<string, string>> = {
  StateMachineDoesNotExist: 'no such state machine',
  InvalidArn: 'not a valid ARN',
};

/** Service errors that mean the credentials are wrong, not the request. */
const REJECTED_CREDENTIALS = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'ExpiredToken',
  'ExpiredTokenException',
  'AuthFailure',
]);

const NETWORK_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
};

/**
 * What an error from AWS means for the person at the CLI: a usage or
 * configuration error (no region, no or rejected credentials, a target
 * that does not exist) or a failed call, each naming the call; `undefined`
 * when nothing in the error's cause chain came from AWS. `subject` is
 * what the command was working on (`--state-machine ARN`).
 */
export function explainAwsError(
  error: unknown,
  subject?: string,
): UsageError | AwsCallError | undefined {
  if (error instanceof UsageError || error instanceof AwsCallError) {
    return error;
  }
  const found = awsErrorIn(error);
  if (found === undefined) {
    return undefined;
  }
  const { sdkError, record } = found;
  const call = record?.call;
  const of = call === undefined ? '' : ` for ${call}`;
  const detail = `${sdkError.name}: ${sdkError.message}`;

  if (sdkError.message === 'Region is missing') {
    return new UsageError(
      `no AWS region is configured${of}: pass --region REGION or set ` +
        'AWS_REGION (or a region in the AWS profile)',
      { cause: error },
    );
  }
  if (
    sdkError.name === 'CredentialsProviderError' ||
    sdkError.name === 'TokenProviderError'
  ) {
    return new UsageError(
      `no AWS credentials${of}: set AWS_PROFILE (a profile with keys or ` +
        'SSO; run aws sso login when it has expired), or AWS_ACCESS_KEY_ID ' +
        `and AWS_SECRET_ACCESS_KEY, or run with an instance role (${detail})`,
      { cause: error },
    );
  }
  if (REJECTED_CREDENTIALS.has(sdkError.name)) {
    return new UsageError(
      `AWS rejected the credentials${of}: check AWS_PROFILE or the access ` +
        `keys and the region (${detail})`,
      { cause: error },
    );
  }
  const target = TARGET_ERRORS[sdkError.name];
  if (target !== undefined) {
    const where = subject === undefined ? (call ?? 'AWS') : subject;
    return new UsageError(`${where}: ${target} (${detail})`, { cause: error });
  }

  const what = call ?? 'an AWS call';
  const attempts = attemptsOf(sdkError);
  const tries = attempts > 1 ? `, ${attempts} attempts` : '';
  const code = (sdkError as { code?: unknown }).code;
  const at = record?.endpoint === undefined ? '' : ` from ${record.endpoint}`;
  if (sdkError.name === 'TimeoutError') {
    const limit = record?.limits.requestTimeoutMs;
    const within =
      limit === undefined ? '' : ` within ${formatSeconds(limit)} per attempt`;
    return new AwsCallError(
      `${what}: no answer${at}${within}${tries} (TimeoutError; ` +
        `${AWS_TIMEOUT_VARIABLE} sets the limit)`,
      call,
      error,
    );
  }
  if (typeof code === 'string' && NETWORK_CODES[code] !== undefined) {
    const to = record?.endpoint === undefined ? '' : ` to ${record.endpoint}`;
    const meaning = `${NETWORK_CODES[code]} (${code})`;
    return new AwsCallError(
      `${what}: cannot reach AWS${to}: ${meaning}${tries}`,
      call,
      error,
    );
  }
  return new AwsCallError(
    call === undefined ? `AWS: ${detail}` : `${call} failed: ${detail}`,
    call,
    error,
  );
}

/** The first error of the cause chain that came from the AWS SDK. */
function awsErrorIn(
  error: unknown,
): { sdkError: Error; record?: CallRecord } | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth += 1) {
    const record = CALLS.get(current);
    if (record !== undefined || isSdkError(current)) {
      return { sdkError: current, record };
    }
    current = current.cause;
  }
  return undefined;
}

function isSdkError(error: Error): boolean {
  return (
    '$metadata' in error ||
    '$fault' in error ||
    error.name === 'CredentialsProviderError' ||
    error.name === 'TokenProviderError' ||
    error.message === 'Region is missing'
  );
}

function attemptsOf(error: Error): number {
  const metadata = (error as { $metadata?: { attempts?: unknown } }).$metadata;
  return typeof metadata?.attempts === 'number' ? metadata.attempts : 1;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
