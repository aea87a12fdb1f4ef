import { z } from 'zod';
import {
  ImageFailedError,
  ImageNotFoundError,
  ImagePolicyError,
} from '../errors.ts';
import type {
  BuildRunner,
  ImageRecord,
  ImageStore,
  ManifestEntry,
} from '../ports.ts';
import { continuePoll, minutesSince, PollSchema, startPoll } from './poll.ts';
import type { PipelineSettings } from './settings.ts';

export const ResolveImageInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  buildId: z.string().min(1),
  artifactsLocation: z.string().min(1).nullable(),
});

export const CheckImageInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  imageId: z.string().min(1),
  poll: PollSchema,
});

export type ResolveImageInput = z.infer<typeof ResolveImageInputSchema>;
export type CheckImageInput = z.infer<typeof CheckImageInputSchema>;

/** `$.image` in the state. */
export interface ImageStep {
  readonly imageId: string;
  readonly state: 'WAITING' | 'DONE';
  readonly snapshotIds: string[];
  readonly poll: z.infer<typeof PollSchema>;
}

export interface ImageDeps {
  readonly builds: BuildRunner;
  readonly images: ImageStore;
  readonly settings: PipelineSettings;
  readonly now: () => Date;
}

/** The manifest's custom data key that names the run of an entry. */
export const MANIFEST_RUN_ID = 'run_id';

/**
 * Finds this run's image in the build's Packer manifest. A manifest keeps
 * the entries of earlier builds too: only the newest entry of this run
 * counts, and a manifest with none is a failed build.
 */
export async function resolveImage(
  input: ResolveImageInput,
  deps: ImageDeps,
): Promise<ImageStep> {
  if (input.artifactsLocation === null) {
    throw new ImageNotFoundError(
      `build ${input.buildId} succeeded but recorded no artifacts`,
    );
  }
  const entries = await deps.builds.readManifest(input.artifactsLocation);
  if (entries === undefined) {
    throw new ImageNotFoundError(
      `build ${input.buildId} succeeded but wrote no Packer manifest ` +
        `at ${input.artifactsLocation}`,
    );
  }

  const entry = newestEntryOfRun(entries, input.runId);
  if (entry === undefined) {
    throw new ImageNotFoundError(
      `the Packer manifest has ${entries.length} entries, none for run ${input.runId}`,
    );
  }

  return {
    imageId: imageIdOf(entry),
    state: 'WAITING',
    snapshotIds: [],
    // Packer waits for the image itself: the first look comes at once.
    poll: startPoll(deps.now(), 0),
  };
}

function newestEntryOfRun(
  entries: readonly ManifestEntry[],
  runId: string,
): ManifestEntry | undefined {
  return entries
    .filter((entry) => entry.customData[MANIFEST_RUN_ID] === runId)
    .sort((a, b) => b.buildTime - a.buildTime)[0];
}

function imageIdOf(entry: ManifestEntry): string {
  // `region:ami-id`, one pair per region the image was copied to.
  const [first] = entry.artifactId.split(',');
  const imageId = first?.split(':')[1];
  if (imageId === undefined || imageId.length === 0) {
    throw new ImageNotFoundError(
      `manifest entry has no image id: ${entry.artifactId}`,
    );
  }
  return imageId;
}

/**
 * Looks at the image once: available with every snapshot completed goes on
 * (after the policy checks), pending waits, a failed image or snapshot stops
 * at once, and a new id may be invisible only for a grace window.
 */
export async function checkImage(
  input: CheckImageInput,
  deps: ImageDeps,
): Promise<ImageStep> {
  const image = await deps.images.describeImage(input.imageId);
  const waiting = (observed: string, snapshotIds: string[]): ImageStep => ({
    imageId: input.imageId,
    state: 'WAITING',
    snapshotIds,
    poll: continuePoll(input.poll, {
      now: deps.now(),
      what: `image ${input.imageId}`,
      observed,
      waitSeconds: deps.settings.image.waitSeconds,
      deadlineMinutes: deps.settings.image.deadlineMinutes,
    }),
  });

  if (image === undefined) {
    const graceMinutes = deps.settings.image.visibilityGraceSeconds / 60;
    if (minutesSince(input.poll.since, deps.now()) < graceMinutes) {
      return waiting('not visible yet', []);
    }
    throw new ImageNotFoundError(
      `image ${input.imageId} is still not visible after ` +
        `${deps.settings.image.visibilityGraceSeconds} s`,
    );
  }

  const snapshotIds = snapshotIdsOf(image);
  if (image.state === 'pending') {
    return waiting('pending', snapshotIds);
  }
  if (image.state !== 'available') {
    throw new ImageFailedError(
      `image ${input.imageId} is ${image.state}: ${image.stateReason ?? 'no reason given'}`,
      { data: { imageId: input.imageId, state: image.state } },
    );
  }

  const snapshots = await deps.images.describeSnapshots(snapshotIds);
  const broken = snapshots.find((s) => s.state === 'error');
  if (broken !== undefined) {
    throw new ImageFailedError(
      `snapshot ${broken.snapshotId} of image ${input.imageId} is in error: ` +
        `${broken.stateMessage ?? 'no reason given'}`,
      { data: { imageId: input.imageId, snapshotId: broken.snapshotId } },
    );
  }
  const unfinished = snapshotIds.filter(
    (id) => snapshots.find((s) => s.snapshotId === id)?.state !== 'completed',
  );
  if (unfinished.length > 0) {
    return waiting(`snapshots pending (${unfinished.join(', ')})`, snapshotIds);
  }

  assertImagePolicy(image, deps.settings);
  return {
    imageId: input.imageId,
    state: 'DONE',
    snapshotIds,
    poll: input.poll,
  };
}

/** The snapshots an image records: one per EBS mapping, none for others. */
export function snapshotIdsOf(image: ImageRecord): string[] {
  return image.blockDevices
    .map((device) => device.snapshotId)
    .filter((id) => id !== undefined);
}

/**
 * Refuses an image that is not encrypted, does not require IMDSv2 or is
 * public, before any instance is launched from it.
 */
export function assertImagePolicy(
  image: ImageRecord,
  settings: PipelineSettings,
): void {
  const violations: string[] = [];
  const ebs = image.blockDevices.filter((d) => d.snapshotId !== undefined);
  if (settings.image.requireEncryption) {
    const clear = ebs.filter((device) => device.encrypted !== true);
    if (ebs.length === 0 || clear.length > 0) {
      const names =
        clear.map((d) => d.deviceName).join(', ') || 'no EBS volume';
      violations.push(`not encrypted (${names})`);
    }
  }
  if (settings.image.requireImdsV2 && image.imdsSupport !== 'v2.0') {
    violations.push(
      `does not require IMDSv2 (ImdsSupport ${image.imdsSupport ?? 'unset'})`,
    );
  }
  if (image.public) {
    violations.push('is public');
  }
  if (violations.length > 0) {
    throw new ImagePolicyError(
      `image ${image.imageId} ${violations.join('; ')}`,
      { data: { imageId: image.imageId, violations } },
    );
  }
}
