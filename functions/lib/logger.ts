import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger of the Lambda handlers: JSON lines with the correlation
 * keys (runId, execution, buildId, amiId) appended as they become known.
 * The log level follows POWERTOOLS_LOG_LEVEL.
 */
export const logger = new Logger({ serviceName: 'sbc-ami' });

export interface CorrelationKeys {
  runId?: string;
  execution?: string;
  buildId?: string;
  amiId?: string;
}

/** Appends the correlation keys that are known, skipping empty ones. */
export function appendCorrelation(keys: CorrelationKeys): void {
  const known = Object.fromEntries(
    Object.entries(keys).filter(([, value]) => typeof value === 'string'),
  );
  logger.appendKeys(known);
}
