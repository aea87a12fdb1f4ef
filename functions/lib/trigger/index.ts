/**
 * The trigger: S3 notifications of new profile versions and schedule fires
 * turned into pipeline executions with deterministic names. The AWS wiring
 * lives beside it (`aws.ts`).
 */

export {
  awsTriggerDeps,
  S3ProfileCatalog,
  SfnExecutionStarter,
  triggerDepsFromEnv,
  triggerSettingsFromEnv,
} from './aws.ts';
export { ScheduledProfileMissingError } from './errors.ts';
export {
  decodeS3Key,
  ignoredKeyReason,
  parseTriggerEvent,
  S3NotificationSchema,
  ScheduledEventSchema,
  type TriggerEvent,
} from './events.ts';
export {
  type ExecutionStarter,
  handleTrigger,
  type IgnoredKey,
  type PlannedRun,
  type ProfileCatalog,
  type ProfileVersion,
  plannedRun,
  planS3Runs,
  type RunRef,
  type StartOutcome,
  type TriggerDeps,
  type TriggerReport,
  type TriggerSettings,
} from './trigger.ts';
