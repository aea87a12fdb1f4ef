import { z } from 'zod';
import type { Notifier } from '../ports.ts';
import { CleanupSummarySchema } from './cleanup-summary.ts';

/** What a `Catch` puts in the state: the error's name and its cause. */
export const CaughtErrorSchema = z.strictObject({
  Error: z.string(),
  Cause: z.string().optional(),
});

/** A step's report of what it could not remove, for a person to finish. */
export const LeftoverReportSchema = z.strictObject({
  instanceId: z.string().nullable().optional(),
  imageId: z.string().nullable().optional(),
  outcome: z.string().optional(),
  removed: z.array(z.string()).optional(),
  leftBehind: z.array(z.string()),
});

export const NotifyInputSchema = z.strictObject({
  outcome: z.enum(['succeeded', 'failed']),
  execution: z.string().min(1),
  runId: z.string().min(1).optional(),
  profileName: z.string().min(1).optional(),
  imageId: z.string().min(1).nullable().optional(),
  publishedTo: z.string().min(1).optional(),
  attestation: z.string().min(1).optional(),
  error: CaughtErrorSchema.optional(),
  /** The retention cleanup after a publish, or its error. */
  cleanup: z.union([CleanupSummarySchema, CaughtErrorSchema]).optional(),
  /** Reports of the cleanup steps, by step; a step that failed shows its error. */
  reports: z
    .record(z.string(), z.union([LeftoverReportSchema, CaughtErrorSchema]))
    .optional(),
});

export type NotifyInput = z.infer<typeof NotifyInputSchema>;
export type CaughtError = z.infer<typeof CaughtErrorSchema>;

export interface NotifyResult {
  readonly subject: string;
  /** One line a person can read: why the run failed, or what it made. */
  readonly reason: string;
}

/** Sends the run's summary, on success and on failure. */
export async function notifyOutcome(
  input: NotifyInput,
  deps: { readonly notifier: Notifier },
): Promise<NotifyResult> {
  const name = input.profileName ?? 'unknown profile';
  const reason =
    input.outcome === 'failed'
      ? readableError(input.error)
      : `image ${input.imageId ?? '?'} published to ${input.publishedTo ?? '?'}`;
  const subject =
    input.outcome === 'failed'
      ? `SBC image build failed: ${name}`
      : `SBC image published: ${name}`;

  const leftBehind = [
    ...leftoversOf(input.reports),
    ...cleanupLeftovers(input.cleanup),
  ];
  const lines = [
    `${subject}`,
    '',
    `execution: ${input.execution}`,
    `run: ${input.runId ?? 'not assigned'}`,
    `image: ${input.imageId ?? 'none'}`,
    input.outcome === 'failed' ? `reason: ${reason}` : `result: ${reason}`,
    ...(input.attestation === undefined
      ? []
      : [`attestation: ${input.attestation}`]),
    ...(leftBehind.length === 0
      ? []
      : [
          '',
          'left behind, delete by hand:',
          ...leftBehind.map((l) => `- ${l}`),
        ]),
  ];

  await deps.notifier.notify({
    subject: subject.slice(0, 100),
    message: lines.join('\n'),
    outcome: input.outcome,
  });
  return { subject, reason };
}

/**
 * The caught error as one readable line, its cause included. Lambda wraps
 * a function's error in a JSON cause (`errorType`, `errorMessage`, never
 * the error's own `cause`, which is why the pipeline's errors put their
 * cause in their message); the states language's own errors carry plain
 * text. When the error type inside differs from the caught name (a runtime
 * crash caught as `States.TaskFailed`), it is kept too.
 */
export function readableError(error: CaughtError | undefined): string {
  if (error === undefined) {
    return 'unknown error';
  }
  const cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as {
      errorType?: unknown;
      errorMessage?: unknown;
    };
    if (typeof parsed.errorMessage === 'string') {
      const type =
        typeof parsed.errorType === 'string' && parsed.errorType !== error.Error
          ? `${parsed.errorType}: `
          : '';
      return `${error.Error}: ${type}${parsed.errorMessage}`;
    }
  } catch {
    // not JSON: the cause is the message itself
  }
  return cause.length > 0 ? `${error.Error}: ${cause}` : error.Error;
}

function cleanupLeftovers(cleanup: NotifyInput['cleanup']): string[] {
  if (cleanup === undefined) {
    return [];
  }
  if ('Error' in cleanup) {
    return [
      `retention cleanup did not run to the end: ${readableError(cleanup)}`,
    ];
  }
  return [
    ...cleanup.failures.map((f) => `${f.id}: ${f.reason}`),
    ...cleanup.leftBehind,
  ];
}

function leftoversOf(reports: NotifyInput['reports']): string[] {
  const lines: string[] = [];
  for (const [step, report] of Object.entries(reports ?? {})) {
    if ('leftBehind' in report) {
      lines.push(...report.leftBehind);
    } else {
      lines.push(`${step} did not run to the end: ${readableError(report)}`);
    }
  }
  return lines;
}
