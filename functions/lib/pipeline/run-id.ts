import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import canonicalize from 'canonicalize';
import { z } from 'zod';

/** Where a SIP profile lives: an S3 object (version), or a local file path. */
export const ProfileRefSchema = z.strictObject({
  bucket: z.string().min(3).optional(),
  key: z.string().min(1),
  versionId: z.string().min(1).optional(),
});

/** What started the run. The same trigger always yields the same run id. */
export const TriggerSchema = z.discriminatedUnion('source', [
  // A new object version under the profile prefix.
  z.strictObject({ source: z.literal('s3') }),
  // A schedule fire, named by its scheduled time.
  z.strictObject({ source: z.literal('schedule'), time: z.iso.datetime() }),
  // An on-call engineer; a nonce makes a deliberate new run.
  z.strictObject({
    source: z.literal('manual'),
    requestedBy: z.string().min(1).optional(),
    nonce: z.string().min(1).optional(),
  }),
  // Local mode on this machine.
  z.strictObject({
    source: z.literal('local'),
    nonce: z.string().min(1).optional(),
  }),
]);

/** The execution input every trigger sends to the state machine. */
export const ExecutionInputSchema = z.strictObject({
  trigger: TriggerSchema,
  profile: ProfileRefSchema,
});

export type ProfileRef = z.infer<typeof ProfileRefSchema>;
export type Trigger = z.infer<typeof TriggerSchema>;
export type ExecutionInput = z.infer<typeof ExecutionInputSchema>;

export interface RunIdentity {
  /** Tags every resource of the run; CodeBuild's idempotency token. */
  readonly runId: string;
  /** The Step Functions execution name: at most 80 of [A-Za-z0-9-_]. */
  readonly executionName: string;
}

/**
 * The run id and execution name of a trigger. Duplicate S3 events and
 * repeated schedule fires carry the same identity, so they name the same
 * execution and cannot start a second build.
 */
export function runIdentity(input: ExecutionInput): RunIdentity {
  if (input.trigger.source === 's3' && input.profile.versionId === undefined) {
    throw new Error('profile.versionId is required for an S3 trigger');
  }
  const identity = canonicalize({
    trigger: input.trigger,
    profile: {
      bucket: input.profile.bucket ?? null,
      key: input.profile.key,
      versionId: input.profile.versionId ?? null,
    },
  });
  const hash = createHash('sha256')
    .update(identity ?? '')
    .digest('hex')
    .slice(0, 16);
  const name = profileSlug(input.profile.key);
  return {
    runId: `sbc-${hash}`,
    executionName: `${name}-${input.trigger.source}-${hash}`,
  };
}

/** A readable, name-safe slug of a profile key: `profiles/Use 1.json` -> `use-1`. */
export function profileSlug(key: string): string {
  const base = posix.basename(key).replace(/\.json$/i, '');
  const slug = base
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug.length > 0 ? slug : 'profile';
}
