/**
 * The narrow ports of the pipeline core. Each has an AWS adapter
 * (`functions/lib/aws/`) and a local adapter (`functions/lib/local/`); the
 * core and the handlers see only these interfaces.
 */

/** Tags as a plain map. */
export type Tags = Record<string, string>;

// ---------------------------------------------------------------- build

export interface StartBuildRequest {
  readonly runId: string;
  /** Attempt number; a new attempt after an infrastructure fault gets a new token. */
  readonly attempt: number;
  readonly profile: ProfileRef;
  readonly profileDigest: string;
  readonly baseImageId: string;
}

/** CodeBuild's build statuses, plus whatever a future API may add. */
export type BuildStatus =
  | 'IN_PROGRESS'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'FAULT'
  | 'TIMED_OUT'
  | 'STOPPED'
  | (string & {});

export interface BuildState {
  readonly buildId: string;
  readonly status: BuildStatus;
  /** The phase the build is in or ended in (QUEUED, PROVISIONING, BUILD...). */
  readonly phase: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  /** Where the build's artifacts (the Packer manifest) were written. */
  readonly artifactsLocation?: string;
}

/** One build of a Packer manifest (`packer-manifest.json` `builds[]`). */
export interface ManifestEntry {
  readonly name: string;
  readonly builderType: string;
  readonly buildTime: number;
  /** `region:ami-id`, comma-separated for several regions. */
  readonly artifactId: string;
  readonly packerRunUuid: string;
  readonly customData: Record<string, string>;
}

export interface BuildRunner {
  start(request: StartBuildRequest): Promise<{ buildId: string }>;
  get(buildId: string): Promise<BuildState>;
  /** Stops a build that is still running; a finished build is left as is. */
  stop(buildId: string): Promise<void>;
  /** The manifest's entries, or undefined when the build wrote none. */
  readManifest(artifactsLocation: string): Promise<ManifestEntry[] | undefined>;
}

/** Removes what the builder left for a run: instances, key pairs, groups. */
export interface LeftoverSweeper {
  sweep(runId: string): Promise<SweepReport>;
}

export interface SweepReport {
  readonly removed: string[];
  /** What could not be removed, for a person to delete by hand. */
  readonly leftBehind: string[];
}

// ---------------------------------------------------------------- images

export type ImageState =
  | 'pending'
  | 'available'
  | 'invalid'
  | 'deregistered'
  | 'transient'
  | 'failed'
  | 'error'
  | 'disabled'
  | (string & {});

export interface ImageRecord {
  readonly imageId: string;
  readonly name: string;
  readonly state: ImageState;
  readonly stateReason?: string;
  readonly createdAt: string;
  readonly architecture: string;
  readonly ownerId: string;
  readonly public: boolean;
  /** `v2.0` when the image requires IMDSv2. */
  readonly imdsSupport?: string;
  readonly deprecatedAt?: string;
  readonly tags: Tags;
  readonly blockDevices: readonly BlockDevice[];
}

/** A block device mapping; only EBS mappings have a snapshot. */
export interface BlockDevice {
  readonly deviceName: string;
  readonly snapshotId?: string;
  readonly encrypted?: boolean;
  readonly volumeType?: string;
}

export type SnapshotState =
  | 'pending'
  | 'completed'
  | 'error'
  | 'recoverable'
  | 'recovering'
  | (string & {});

export interface SnapshotRecord {
  readonly snapshotId: string;
  readonly state: SnapshotState;
  readonly stateMessage?: string;
  readonly encrypted: boolean;
  readonly tags: Tags;
}

export type DeleteOutcome = 'deleted' | 'already-gone';

export interface ImageStore {
  describeImage(imageId: string): Promise<ImageRecord | undefined>;
  describeSnapshots(snapshotIds: readonly string[]): Promise<SnapshotRecord[]>;
  /** The newest image of an owner whose name matches a pattern (`*` glob). */
  findLatestImage(
    ownerId: string,
    namePattern: string,
  ): Promise<ImageRecord | undefined>;
  tagImage(imageId: string, tags: Tags): Promise<void>;
  deregisterImage(imageId: string): Promise<DeleteOutcome>;
  /** Throws `SnapshotInUseError` while an image or volume still uses it. */
  deleteSnapshot(snapshotId: string): Promise<DeleteOutcome>;
}

// ---------------------------------------------------------------- test host

export interface LaunchRequest {
  readonly runId: string;
  readonly imageId: string;
}

export type HostState =
  | 'pending'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'shutting-down'
  | 'terminated'
  | (string & {});

export interface HostStatus {
  readonly instanceId: string;
  readonly state: HostState;
  /** Status checks passed and the host is reachable from the smoke test. */
  readonly reachable: boolean;
  /** Address the smoke test probes. */
  readonly address?: string;
  /** Why the host is not reachable yet or is failing. */
  readonly detail?: string;
}

export interface TestHostRunner {
  launch(request: LaunchRequest): Promise<{ instanceId: string }>;
  status(instanceId: string): Promise<HostStatus | undefined>;
  terminate(instanceId: string): Promise<DeleteOutcome>;
}

// ---------------------------------------------------------------- publish

export interface PublishRequest {
  readonly runId: string;
  readonly imageId: string;
  readonly profileName: string;
  /** Why this version exists, for the launch template version's description. */
  readonly description: string;
}

export interface PublishResult {
  readonly parameterName?: string;
  readonly parameterVersion?: number;
  readonly launchTemplateId?: string;
  readonly launchTemplateVersion?: number;
  /** Where the image was published, for people (an ARN, a file path). */
  readonly location: string;
}

export interface Publisher {
  publish(request: PublishRequest): Promise<PublishResult>;
  /** The published image ids of a profile, newest first (current first). */
  history(profileName: string): Promise<string[]>;
}

// ---------------------------------------------------------------- notify

export interface Notification {
  readonly subject: string;
  readonly message: string;
  readonly outcome: 'succeeded' | 'failed';
}

export interface Notifier {
  notify(notification: Notification): Promise<void>;
}

// ---------------------------------------------------------------- profile

/** Where a SIP profile lives: an S3 object version, or a local file. */
export interface ProfileRef {
  readonly bucket?: string;
  readonly key: string;
  readonly versionId?: string;
}

export interface ProfileSource {
  read(ref: ProfileRef): Promise<{ body: Uint8Array; versionId?: string }>;
}
