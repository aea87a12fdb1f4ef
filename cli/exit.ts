/** Exit codes of `sbc-ami`, the same for every command. */
export const EXIT_OK = 0;
/** A check failed: the probe, a verification, a run that ended failed. */
export const EXIT_FAILED = 1;
/** Usage or configuration error: bad flag, unreadable file, missing setting. */
export const EXIT_USAGE = 2;

/** Thrown by a command for a usage or configuration error (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}
