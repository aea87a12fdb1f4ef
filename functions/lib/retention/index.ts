/**
 * Retention and orphan cleanup: a pure planner over a listed inventory,
 * deletion through the `ImageStore` port, and builder leftovers. AWS and
 * local wiring live beside it (`aws.ts`, `local.ts`).
 */

export {
  type AwsCleanupOptions,
  awsCleanupDeps,
  awsCleanupDepsFromEnv,
} from './aws.ts';
export {
  CodeBuildRunLookup,
  MAX_BUILD_HOURS,
  RUN_ID_VARIABLE,
} from './aws-builds.ts';
export {
  type AwsInventoryOptions,
  AwsInventorySource,
} from './aws-inventory.ts';
export {
  Ec2LeftoverSweeper,
  type Ec2LeftoverSweeperOptions,
} from './aws-leftovers.ts';
export {
  type CleanupDeps,
  type CleanupOptions,
  type CleanupReport,
  type CleanupSummary,
  runCleanup,
  summarizeCleanup,
} from './cleanup.ts';
export { TAG_SNAPSHOT_IDS } from './constants.ts';
export {
  type DeletionOptions,
  type DeletionResult,
  type DiscardOptions,
  deleteImageAndSnapshots,
  deleteSnapshotWhenFree,
  discardImage,
} from './deletion.ts';
export { PaginationLoopError, RetentionPolicyError } from './errors.ts';
export { formatCleanupTable } from './format.ts';
export type {
  AutoScalingGroupRef,
  InstanceRef,
  Inventory,
  InventoryImage,
  InventorySource,
  LaunchConfigurationRef,
  LaunchTemplateVersionRef,
  Leftover,
  LeftoverKind,
  LeftoverLister,
  LeftoverRemover,
  LeftoverSweepReport,
  OtherImage,
  PublishedHistory,
  SnapshotCandidate,
  TemplateSpec,
} from './inventory.ts';
export {
  type LocalCleanupOptions,
  LocalInventorySource,
  localCleanupDeps,
} from './local.ts';
export { ApiCallCounter, collectPages, type Page } from './paging.ts';
export {
  type Action,
  type CandidateKind,
  type Decision,
  type DeleteCode,
  type KeepCode,
  planRetention,
  type Reason,
  type RetentionPlan,
  recordedSnapshots,
} from './planner.ts';
export {
  DEFAULT_POLICY,
  policyFromEnv,
  type RetentionPolicy,
  RetentionPolicySchema,
  retentionPolicy,
} from './policy.ts';
