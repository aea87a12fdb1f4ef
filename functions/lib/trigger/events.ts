import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas';
import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import { parseInput } from '../handler.ts';

/**
 * One record of an S3 event notification, only the fields the trigger
 * reads. AWS writes these events and adds fields over time, so unknown
 * keys pass. Not the Powertools `S3Schema`: it requires an IPv4 source
 * address, and a profile uploaded over S3's dual-stack endpoints has an
 * IPv6 one.
 */
const S3NotificationRecordSchema = z.object({
  eventSource: z.literal('aws:s3'),
  eventName: z.string().min(1),
  s3: z.object({
    bucket: z.object({ name: z.string().min(3) }),
    object: z.object({
      // Form-encoded: `+` is a space, `%2B` a plus (see decodeS3Key).
      key: z.string().min(1),
      // Absent when the bucket is not versioned.
      versionId: z.string().min(1).optional(),
    }),
  }),
});

/** An S3 event notification as S3 invokes the function. */
export const S3NotificationSchema = z.object({
  Records: z.array(S3NotificationRecordSchema).min(1),
});

/** The event an EventBridge schedule rule sends (no custom input). */
export const ScheduledEventSchema = EventBridgeSchema.extend({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
});

export type S3NotificationRecord = z.infer<typeof S3NotificationRecordSchema>;

/** What started the trigger, validated. */
export type TriggerEvent =
  | { readonly kind: 's3'; readonly records: readonly S3NotificationRecord[] }
  | { readonly kind: 'schedule'; readonly time: string };

/**
 * Tells an S3 notification from a scheduled event and validates it. A
 * malformed event fails with the path of the first wrong field.
 */
export function parseTriggerEvent(event: unknown): TriggerEvent {
  if (typeof event === 'object' && event !== null) {
    if ('Records' in event) {
      const parsed = parseInput(S3NotificationSchema, event);
      return { kind: 's3', records: parsed.Records };
    }
    if ('detail-type' in event || 'source' in event) {
      const parsed = parseInput(ScheduledEventSchema, event);
      return { kind: 'schedule', time: parsed.time };
    }
  }
  throw new InvalidInputError(
    'invalid event: (event): neither an S3 notification (Records) nor an ' +
      'EventBridge scheduled event (detail-type "Scheduled Event")',
    { data: { fields: ['(event)'] } },
  );
}

/**
 * The object key of an S3 notification: S3 sends it form-encoded, so `+`
 * stands for a space and `%2B` for a plus. Only notifications need this;
 * keys from the S3 API (ListObjectsV2) are sent as they are.
 */
export function decodeS3Key(encoded: string, field: string): string {
  try {
    return decodeURIComponent(encoded.replaceAll('+', '%20'));
  } catch (error) {
    throw new InvalidInputError(
      `invalid event: ${field}: ${JSON.stringify(encoded)} is not a ` +
        'URL-encoded object key',
      { cause: error, data: { fields: [field] } },
    );
  }
}

/** Why a key starts nothing, or undefined when it names a profile. */
export function ignoredKeyReason(
  key: string,
  prefix: string,
): string | undefined {
  if (!key.startsWith(prefix)) {
    return `outside the profile prefix ${prefix}`;
  }
  if (key.endsWith('/')) {
    return 'a folder marker';
  }
  const name = key.slice(prefix.length);
  if (!name.endsWith('.json') || name === '.json') {
    return 'not a .json profile';
  }
  return undefined;
}
