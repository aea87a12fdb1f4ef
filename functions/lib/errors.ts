/**
 * Named errors of the pipeline core. The `name` of each class is what the
 * state machine's `Retry` and `Catch` match on (`ErrorEquals`), so a name is
 * part of the contract with `statemachine/pipeline.asl.json`: rename one
 * there and here together.
 */

export interface ErrorDetails {
  readonly cause?: unknown;
  readonly data?: Record<string, unknown>;
}

/** Base class: keeps the cause and carries domain data for the logs. */
export class PipelineError extends Error {
  override name = 'PipelineError';
  readonly data: Record<string, unknown>;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.data = details.data ?? {};
  }
}

/** The event or a field of it does not match the handler's schema. */
export class InvalidInputError extends PipelineError {
  override name = 'InvalidInputError';
}

/** A configuration variable is missing or malformed. */
export class ConfigurationError extends PipelineError {
  override name = 'ConfigurationError';
}

/** AWS refused a call for its rate or a service quota: retry later. */
export class ThrottledError extends PipelineError {
  override name = 'ThrottledError';
}

/** The base image is missing, or its owner or name is not allowed. */
export class BaseImageRejectedError extends PipelineError {
  override name = 'BaseImageRejectedError';
}

/** The build failed before it ran (still queued or provisioning): start it again. */
export class BuildInfrastructureError extends PipelineError {
  override name = 'BuildInfrastructureError';
}

/** The build ended without an image: failed, faulted, timed out or stopped. */
export class BuildFailedError extends PipelineError {
  override name = 'BuildFailedError';
}

/** The build reports a status this pipeline does not know: fail closed. */
export class BuildStatusUnknownError extends PipelineError {
  override name = 'BuildStatusUnknownError';
}

/** This run's image is not in the manifest or not visible in time. */
export class ImageNotFoundError extends PipelineError {
  override name = 'ImageNotFoundError';
}

/** The image or one of its snapshots reached a failed state. */
export class ImageFailedError extends PipelineError {
  override name = 'ImageFailedError';
}

/** The image is available but breaks policy (unencrypted, IMDSv1, public). */
export class ImagePolicyError extends PipelineError {
  override name = 'ImagePolicyError';
}

/** The test instance stopped, terminated or failed its status checks. */
export class TestInstanceError extends PipelineError {
  override name = 'TestInstanceError';
}

/** A wait loop passed its deadline or its attempt cap. */
export class WaitTimeoutError extends PipelineError {
  override name = 'WaitTimeoutError';
}

/** The SIP/TLS smoke test found at least one failing check. */
export class SmokeTestFailedError extends PipelineError {
  override name = 'SmokeTestFailedError';
}

/** Signing the provenance attestation failed. */
export class SigningError extends PipelineError {
  override name = 'SigningError';
}

/** Tagging, the SSM parameter or the launch template version failed. */
export class PublishError extends PipelineError {
  override name = 'PublishError';
}

/** Error names of the AWS SDK and services that mean "slow down". */
const THROTTLING_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'AccountLimitExceededException',
  'ProvisionedThroughputExceededException',
]);

/** True when an AWS SDK error asks the caller to retry later. */
export function isThrottling(error: unknown): boolean {
  if (error instanceof ThrottledError) {
    return true;
  }
  if (!(error instanceof Error)) {
    return false;
  }
  const retryable = (error as { $retryable?: { throttling?: boolean } })
    .$retryable;
  return THROTTLING_NAMES.has(error.name) || retryable?.throttling === true;
}

/**
 * Runs one AWS call and turns a throttling refusal into `ThrottledError`, so
 * the state machine retries it with backoff; any other error passes through.
 */
export async function throttleAware<T>(
  action: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isThrottling(error)) {
      throw new ThrottledError(`${action} was throttled`, { cause: error });
    }
    throw error;
  }
}

/** The error's message followed by its causes, for a person to read. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current !== undefined && parts.length < 5) {
    if (current instanceof Error) {
      parts.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  return parts.join(' <- ');
}

/** A snapshot cannot be deleted yet: an image or a volume still uses it. */
export class SnapshotInUseError extends PipelineError {
  override name = 'SnapshotInUseError';
}
