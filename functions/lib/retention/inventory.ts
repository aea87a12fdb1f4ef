import type { HostState, ImageRecord, SweepReport, Tags } from '../ports.ts';

/**
 * Everything the retention planner looks at, listed once per run. An
 * adapter fills it (AWS: EC2, Auto Scaling and SSM listings; local: the
 * local image store); the planner reads it and calls nothing.
 */
export interface Inventory {
  /**
   * The candidates: images this pipeline made in this account and region,
   * in every state (deprecated and disabled included). The adapter decides
   * what "made by this pipeline" means for its store.
   */
  readonly images: readonly InventoryImage[];
  /** Images of this account that are not candidates, for their snapshots. */
  readonly otherImages?: readonly OtherImage[];
  /** Published values, one history per parameter (or local registry). */
  readonly published: readonly PublishedHistory[];
  /**
   * The published values could not be read: every validated image is then
   * kept, since any of them may be published.
   */
  readonly publishedUnknown?: boolean;
  readonly launchTemplateVersions?: readonly LaunchTemplateVersionRef[];
  readonly launchConfigurations?: readonly LaunchConfigurationRef[];
  readonly autoScalingGroups?: readonly AutoScalingGroupRef[];
  /** Instances in any state; the planner ignores terminated ones. */
  readonly instances?: readonly InstanceRef[];
  /** Snapshots that may be orphans: tagged by the pipeline or recorded. */
  readonly snapshots?: readonly SnapshotCandidate[];
  /** Snapshot ids the pipeline recorded as its own (manifests, reports). */
  readonly recordedSnapshotIds?: readonly string[];
  /** Instances, key pairs and security groups left by builds. */
  readonly leftovers?: readonly Leftover[];
  /** Run ids whose build is still running; filled in by `runCleanup`. */
  readonly runningRunIds?: readonly string[];
}

export interface InventoryImage extends ImageRecord {
  /** EC2 refuses to deregister the image while this is on. */
  readonly deregistrationProtection?: boolean;
}

export interface OtherImage {
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
}

export interface PublishedHistory {
  /** The parameter (or registry entry) name, shown in reasons. */
  readonly name: string;
  /** Published image ids, newest first: the current value first. */
  readonly imageIds: readonly string[];
}

export interface LaunchTemplateVersionRef {
  readonly launchTemplateId: string;
  readonly launchTemplateName?: string;
  readonly version: number;
  readonly isDefault: boolean;
  /** Resolved AMI id (an SSM alias is resolved when listing). */
  readonly imageId?: string;
}

export interface LaunchConfigurationRef {
  readonly name: string;
  readonly imageId?: string;
}

/** A launch template as an Auto Scaling group names it. */
export interface TemplateSpec {
  readonly launchTemplateId?: string;
  readonly launchTemplateName?: string;
  /** `$Latest`, `$Default` or a number; omitted means `$Default`. */
  readonly version?: string;
}

export interface AutoScalingGroupRef {
  readonly name: string;
  readonly launchConfigurationName?: string;
  readonly launchTemplate?: TemplateSpec;
  /** The mixed-instances policy's launch template. */
  readonly mixedInstancesTemplate?: TemplateSpec;
  /** Overrides of the mixed-instances policy: a template or an image each. */
  readonly overrides?: readonly { template?: TemplateSpec; imageId?: string }[];
}

export interface InstanceRef {
  readonly instanceId: string;
  readonly imageId?: string;
  readonly state: HostState;
}

export interface SnapshotCandidate {
  readonly snapshotId: string;
  readonly createdAt?: string;
  readonly tags: Tags;
}

export type LeftoverKind = 'instance' | 'key-pair' | 'security-group';

export interface Leftover {
  readonly kind: LeftoverKind;
  readonly id: string;
  readonly runId: string;
  /** Security groups have no creation time in EC2. */
  readonly createdAt?: string;
  readonly name?: string;
}

/** Lists the inventory; a listing error rejects (nothing gets deleted). */
export interface InventorySource {
  list(): Promise<Inventory>;
}

/** Lists builder leftovers of every run, for the stale-run sweep. */
export interface LeftoverLister {
  listLeftovers(): Promise<Leftover[]>;
}

export interface LeftoverSweepReport extends SweepReport {
  /** Why each id in `leftBehind` is still there. */
  readonly errors: { id: string; reason: string }[];
}

/** Removes exactly the listed leftovers: the stale-run sweep. */
export interface LeftoverRemover {
  removeLeftovers(leftovers: readonly Leftover[]): Promise<LeftoverSweepReport>;
}
