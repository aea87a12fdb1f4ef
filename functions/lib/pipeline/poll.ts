import { z } from 'zod';
import { WaitTimeoutError } from '../errors.ts';

/**
 * The bookkeeping of one wait loop, carried in the state between checks.
 * The loop itself is the state machine's Wait and Choice; each check is
 * one short Lambda call that reads this and returns the next one.
 */
export const PollSchema = z.strictObject({
  /** Checks made so far. */
  attempt: z.number().int().min(0),
  /** When the loop began. */
  since: z.iso.datetime(),
  /** How long the state machine waits before the next check. */
  waitSeconds: z.number().int().min(0),
  /** What the last check observed, for the timeout message. */
  observed: z.string().optional(),
});

export type Poll = z.infer<typeof PollSchema>;

/** The bookkeeping of a loop starting now. */
export function startPoll(now: Date, waitSeconds: number): Poll {
  return { attempt: 0, since: now.toISOString(), waitSeconds };
}

/**
 * Records a check that saw the loop must go on. Throws `WaitTimeoutError`
 * saying what it saw (`build IN_PROGRESS x14 over 31 min`) once the loop
 * has run past its deadline.
 */
export function continuePoll(
  poll: Poll,
  args: {
    readonly now: Date;
    readonly what: string;
    readonly observed: string;
    readonly waitSeconds: number;
    readonly deadlineMinutes: number;
  },
): Poll {
  const attempt = poll.attempt + 1;
  const elapsedMinutes = minutesSince(poll.since, args.now);
  if (elapsedMinutes >= args.deadlineMinutes) {
    throw new WaitTimeoutError(
      `${args.what} still ${args.observed} x${attempt} over ` +
        `${Math.round(elapsedMinutes)} min (deadline ${args.deadlineMinutes} min)`,
      { data: { attempt, observed: args.observed, since: poll.since } },
    );
  }
  return {
    attempt,
    since: poll.since,
    waitSeconds: args.waitSeconds,
    observed: args.observed,
  };
}

/** Minutes from an ISO time to now. */
export function minutesSince(since: string, now: Date): number {
  return (now.getTime() - Date.parse(since)) / 60_000;
}
