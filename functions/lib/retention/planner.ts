import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_PROFILE,
  TAG_RETAIN,
  TAG_RUN_ID,
  TAG_VALIDATED,
} from '../constants.ts';
import type { Tags } from '../ports.ts';
import {
  CREATING_STATES,
  FAILED_STATES,
  TAG_SNAPSHOT_IDS,
} from './constants.ts';
import type {
  Inventory,
  InventoryImage,
  Leftover,
  LeftoverKind,
  SnapshotCandidate,
  TemplateSpec,
} from './inventory.ts';
import type { RetentionPolicy } from './policy.ts';

export type Action = 'keep' | 'delete';

export type CandidateKind = 'image' | 'snapshot' | LeftoverKind;

export type KeepCode =
  | 'published'
  | 'launch-template'
  | 'launch-configuration'
  | 'auto-scaling-group'
  | 'instance'
  | 'grace-window'
  | 'unknown-age'
  | 'retain-tag'
  | 'newest-validated'
  | 'being-created'
  | 'build-running'
  | 'deregistration-protection'
  | 'not-provably-ours'
  | 'recent-leftover'
  | 'deletion-cap';

export type DeleteCode =
  | 'failed'
  | 'never-validated'
  | 'superseded'
  | 'orphan-snapshot'
  | 'stale-leftover';

export interface Reason {
  readonly code: KeepCode | DeleteCode;
  readonly text: string;
}

/** One candidate and what retention does with it, with every reason. */
export interface Decision {
  readonly kind: CandidateKind;
  readonly id: string;
  readonly action: Action;
  readonly reasons: readonly Reason[];
  readonly name?: string;
  readonly profile?: string;
  readonly runId?: string;
  readonly createdAt?: string;
  readonly state?: string;
  /** Image: the recorded snapshots deleted after it is deregistered. */
  readonly snapshotIds?: readonly string[];
  /** Image: recorded snapshots left because another image uses them. */
  readonly sharedSnapshotIds?: readonly string[];
}

export interface RetentionPlan {
  readonly decisions: Decision[];
  /** Runs whose leftovers are swept (their build is over and they are old). */
  readonly staleRuns: string[];
}

const HOUR_MS = 3_600_000;

/** References are summarised past this many in one reason. */
const REFS_SHOWN = 3;

/**
 * Decides, for every candidate, keep or delete and why. Pure: the same
 * inventory, policy and time give the same plan. Any keep reason wins over
 * every delete reason; all keep reasons that apply are listed.
 */
export function planRetention(
  inventory: Inventory,
  policy: RetentionPolicy,
  now: Date,
): RetentionPlan {
  const context = indexInventory(inventory, policy);
  const images = [...inventory.images].sort(byProfileThenNewest);
  const imageDecisions = images.map((image) =>
    decideImage(image, context, policy, now),
  );
  const snapshotDecisions = (inventory.snapshots ?? [])
    .filter((snapshot) => !context.snapshotUsers.has(snapshot.snapshotId))
    .sort(newestFirst)
    .map((snapshot) => decideSnapshot(snapshot, context, policy, now));
  const capped = applyCap(
    [...imageDecisions, ...snapshotDecisions],
    policy.maxDeletes,
  );
  const leftovers = decideLeftovers(
    inventory.leftovers ?? [],
    context.running,
    policy,
    now,
  );
  return {
    decisions: [...capped, ...leftovers.decisions],
    staleRuns: leftovers.staleRuns,
  };
}

/** The snapshots recorded for an image: its EBS mappings and its tag. */
export function recordedSnapshots(image: {
  readonly tags: Tags;
  readonly blockDevices: readonly { snapshotId?: string }[];
}): string[] {
  const ids = new Set<string>();
  for (const device of image.blockDevices) {
    if (device.snapshotId !== undefined && device.snapshotId !== '') {
      ids.add(device.snapshotId);
    }
  }
  for (const id of (image.tags[TAG_SNAPSHOT_IDS] ?? '').split(/[\s,]+/)) {
    if (id !== '') {
      ids.add(id);
    }
  }
  return [...ids];
}

// ------------------------------------------------------------- indexing

interface Context {
  /** Image id to the published positions that keep it. */
  readonly published: Map<string, string[]>;
  /** Image id to reference texts, by kind of reference. */
  readonly refs: Record<
    'launch-template' | 'launch-configuration' | 'auto-scaling-group',
    Map<string, string[]>
  >;
  readonly instances: Map<string, string[]>;
  readonly newestValidated: Map<string, string>;
  /** Snapshot id to the ids of every image that records it. */
  readonly snapshotUsers: Map<string, string[]>;
  readonly recorded: ReadonlySet<string>;
  readonly running: ReadonlySet<string>;
  readonly publishedUnknown: boolean;
}

function indexInventory(
  inventory: Inventory,
  policy: RetentionPolicy,
): Context {
  return {
    published: indexPublished(inventory, policy.keepPublished),
    refs: indexReferences(inventory),
    instances: indexInstances(inventory),
    newestValidated: indexNewestValidated(
      inventory.images,
      policy.keepValidatedPerProfile,
    ),
    snapshotUsers: indexSnapshotUsers(inventory),
    recorded: new Set(inventory.recordedSnapshotIds ?? []),
    running: new Set(inventory.runningRunIds ?? []),
    publishedUnknown: inventory.publishedUnknown === true,
  };
}

function indexPublished(
  inventory: Inventory,
  keepPrevious: number,
): Map<string, string[]> {
  const kept = new Map<string, string[]>();
  for (const history of inventory.published) {
    // A value published twice counts once: N previous means N other images.
    const distinct = [...new Set(history.imageIds)].slice(0, keepPrevious + 1);
    distinct.forEach((imageId, position) => {
      const text =
        position === 0
          ? `current published value of ${history.name}`
          : `published value of ${history.name}, ${position} before current`;
      push(kept, imageId, text);
    });
  }
  return kept;
}

interface TemplateIndex {
  readonly name?: string;
  readonly versions: Map<number, string | undefined>;
  defaultVersion?: number;
  latestVersion: number;
}

function indexReferences(inventory: Inventory): Context['refs'] {
  const refs: Context['refs'] = {
    'launch-template': new Map(),
    'launch-configuration': new Map(),
    'auto-scaling-group': new Map(),
  };

  const templates = new Map<string, TemplateIndex>();
  const templateIds = new Map<string, string>();
  for (const version of inventory.launchTemplateVersions ?? []) {
    let template = templates.get(version.launchTemplateId);
    if (template === undefined) {
      template = {
        name: version.launchTemplateName,
        versions: new Map(),
        latestVersion: version.version,
      };
      templates.set(version.launchTemplateId, template);
    }
    template.versions.set(version.version, version.imageId);
    template.latestVersion = Math.max(template.latestVersion, version.version);
    if (version.isDefault) {
      template.defaultVersion = version.version;
    }
    if (version.launchTemplateName !== undefined) {
      templateIds.set(version.launchTemplateName, version.launchTemplateId);
    }
    if (version.imageId !== undefined) {
      push(
        refs['launch-template'],
        version.imageId,
        `${templateLabel(version.launchTemplateId, template.name)} ` +
          `version ${version.version}${version.isDefault ? ' (default)' : ''}`,
      );
    }
  }

  const configurations = new Map<string, string | undefined>();
  for (const configuration of inventory.launchConfigurations ?? []) {
    configurations.set(configuration.name, configuration.imageId);
    if (configuration.imageId !== undefined) {
      push(
        refs['launch-configuration'],
        configuration.imageId,
        configuration.name,
      );
    }
  }

  const resolve = (spec: TemplateSpec): [string, string] | undefined => {
    const id =
      spec.launchTemplateId ??
      (spec.launchTemplateName === undefined
        ? undefined
        : templateIds.get(spec.launchTemplateName));
    const template = id === undefined ? undefined : templates.get(id);
    if (id === undefined || template === undefined) {
      return undefined;
    }
    const wanted = spec.version ?? '$Default';
    const number =
      wanted === '$Latest'
        ? template.latestVersion
        : wanted === '$Default'
          ? template.defaultVersion
          : Number.parseInt(wanted, 10);
    const imageId =
      number === undefined ? undefined : template.versions.get(number);
    return imageId === undefined
      ? undefined
      : [
          imageId,
          `${templateLabel(id, template.name)} version ${number} (${wanted})`,
        ];
  };

  for (const group of inventory.autoScalingGroups ?? []) {
    const add = (imageId: string | undefined, via: string) => {
      if (imageId !== undefined) {
        push(refs['auto-scaling-group'], imageId, `${group.name} via ${via}`);
      }
    };
    if (group.launchConfigurationName !== undefined) {
      add(
        configurations.get(group.launchConfigurationName),
        `launch configuration ${group.launchConfigurationName}`,
      );
    }
    for (const [spec, role] of [
      [group.launchTemplate, ''],
      [group.mixedInstancesTemplate, 'mixed-instances '],
    ] as const) {
      const resolved = spec === undefined ? undefined : resolve(spec);
      if (resolved !== undefined) {
        add(resolved[0], `${role}${resolved[1]}`);
      }
    }
    for (const override of group.overrides ?? []) {
      add(override.imageId, 'a mixed-instances override');
      const resolved =
        override.template === undefined
          ? undefined
          : resolve(override.template);
      if (resolved !== undefined) {
        add(resolved[0], `a mixed-instances override, ${resolved[1]}`);
      }
    }
  }
  return refs;
}

function indexInstances(inventory: Inventory): Map<string, string[]> {
  const used = new Map<string, string[]>();
  for (const instance of inventory.instances ?? []) {
    if (instance.imageId !== undefined && instance.state !== 'terminated') {
      push(
        used,
        instance.imageId,
        `${instance.instanceId} (${instance.state})`,
      );
    }
  }
  return used;
}

function indexNewestValidated(
  images: readonly InventoryImage[],
  keep: number,
): Map<string, string> {
  const byProfile = new Map<string, InventoryImage[]>();
  for (const image of images) {
    if (image.tags[TAG_VALIDATED] === 'true') {
      const profile = profileOf(image);
      const list = byProfile.get(profile) ?? [];
      list.push(image);
      byProfile.set(profile, list);
    }
  }
  const kept = new Map<string, string>();
  for (const [profile, list] of byProfile) {
    list.sort((a, b) => newestFirst(a, b) || compareText(a.imageId, b.imageId));
    list.slice(0, keep).forEach((image, index) => {
      kept.set(
        image.imageId,
        `validated, newest ${index + 1} of ${keep} kept for profile ${profile}`,
      );
    });
  }
  return kept;
}

function indexSnapshotUsers(inventory: Inventory): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const image of inventory.images) {
    for (const snapshotId of recordedSnapshots(image)) {
      push(users, snapshotId, image.imageId);
    }
  }
  for (const image of inventory.otherImages ?? []) {
    for (const snapshotId of image.snapshotIds) {
      push(users, snapshotId, image.imageId);
    }
  }
  return users;
}

// ------------------------------------------------------------- deciding

const REFERENCE_KINDS = [
  ['launch-template', 'launch template'],
  ['launch-configuration', 'launch configuration'],
  ['auto-scaling-group', 'Auto Scaling group'],
] as const;

function decideImage(
  image: InventoryImage,
  context: Context,
  policy: RetentionPolicy,
  now: Date,
): Decision {
  const keep: Reason[] = [];
  for (const text of context.published.get(image.imageId) ?? []) {
    keep.push({ code: 'published', text });
  }
  if (context.publishedUnknown && image.tags[TAG_VALIDATED] === 'true') {
    keep.push({
      code: 'published',
      text: 'validated, and the published values are unknown',
    });
  }
  for (const [code, label] of REFERENCE_KINDS) {
    const refs = context.refs[code].get(image.imageId);
    if (refs !== undefined) {
      keep.push({ code, text: `in ${label} ${summarize(refs)}` });
    }
  }
  const instances = context.instances.get(image.imageId);
  if (instances !== undefined) {
    const noun = instances.length === 1 ? 'instance' : 'instances';
    keep.push({
      code: 'instance',
      text: `used by ${noun} ${summarize(instances)}`,
    });
  }
  const age = ageReason(image.createdAt, policy.graceHours, now);
  if (age !== undefined) {
    keep.push(age);
  }
  if (image.tags[TAG_RETAIN] === 'true') {
    keep.push({ code: 'retain-tag', text: `tagged ${TAG_RETAIN}=true` });
  }
  const validated = context.newestValidated.get(image.imageId);
  if (validated !== undefined) {
    keep.push({ code: 'newest-validated', text: validated });
  }
  if (CREATING_STATES.has(image.state)) {
    keep.push({
      code: 'being-created',
      text: `still being created (state ${image.state})`,
    });
  }
  const runId = image.tags[TAG_RUN_ID];
  if (runId !== undefined && context.running.has(runId)) {
    keep.push({
      code: 'build-running',
      text: `the build of run ${runId} is still running`,
    });
  }
  if (image.deregistrationProtection === true) {
    keep.push({
      code: 'deregistration-protection',
      text: 'deregistration protection is on',
    });
  }

  const recorded = recordedSnapshots(image);
  const own: string[] = [];
  const shared: string[] = [];
  for (const snapshotId of recorded) {
    const users = context.snapshotUsers.get(snapshotId) ?? [];
    const elsewhere = users.some((user) => user !== image.imageId);
    (elsewhere ? shared : own).push(snapshotId);
  }
  const decision: Decision = {
    kind: 'image',
    id: image.imageId,
    action: keep.length > 0 ? 'keep' : 'delete',
    reasons: keep.length > 0 ? keep : [deleteReason(image, policy)],
    name: image.name,
    profile: image.tags[TAG_PROFILE],
    runId,
    createdAt: image.createdAt,
    state: image.state,
    snapshotIds: own,
  };
  return shared.length > 0
    ? { ...decision, sharedSnapshotIds: shared }
    : decision;
}

function deleteReason(image: InventoryImage, policy: RetentionPolicy): Reason {
  if (FAILED_STATES.has(image.state)) {
    const why = image.stateReason ? `: ${image.stateReason}` : '';
    return {
      code: 'failed',
      text: `image ${image.state}${why}; older than the grace window`,
    };
  }
  if (image.tags[TAG_VALIDATED] !== 'true') {
    return {
      code: 'never-validated',
      text: 'never validated; older than the grace window',
    };
  }
  return {
    code: 'superseded',
    text:
      `validated, but not among the newest ${policy.keepValidatedPerProfile}` +
      ` of profile ${profileOf(image)}; not published, not in use`,
  };
}

function decideSnapshot(
  snapshot: SnapshotCandidate,
  context: Context,
  policy: RetentionPolicy,
  now: Date,
): Decision {
  const runId = snapshot.tags[TAG_RUN_ID];
  const base = {
    kind: 'snapshot' as const,
    id: snapshot.snapshotId,
    runId,
    createdAt: snapshot.createdAt,
  };
  const proof =
    snapshot.tags[TAG_MANAGED_BY] === MANAGED_BY_VALUE
      ? `tagged ${TAG_MANAGED_BY}=${MANAGED_BY_VALUE}`
      : context.recorded.has(snapshot.snapshotId)
        ? 'recorded by the pipeline'
        : undefined;
  if (proof === undefined) {
    return {
      ...base,
      action: 'keep',
      reasons: [
        {
          code: 'not-provably-ours',
          text: 'no image uses it, but nothing proves the pipeline made it',
        },
      ],
    };
  }

  const keep: Reason[] = [];
  const age = ageReason(snapshot.createdAt, policy.graceHours, now);
  if (age !== undefined) {
    keep.push(age);
  }
  if (snapshot.tags[TAG_RETAIN] === 'true') {
    keep.push({ code: 'retain-tag', text: `tagged ${TAG_RETAIN}=true` });
  }
  if (runId !== undefined && context.running.has(runId)) {
    keep.push({
      code: 'build-running',
      text: `the build of run ${runId} is still running`,
    });
  }
  if (keep.length > 0) {
    return { ...base, action: 'keep', reasons: keep };
  }
  return {
    ...base,
    action: 'delete',
    reasons: [
      {
        code: 'orphan-snapshot',
        text: `no image uses it; ${proof}; older than the grace window`,
      },
    ],
  };
}

/**
 * Leftovers are decided per run: a run is stale when its build is over and
 * its newest resource is older than the threshold, so a test instance
 * launched after the build keeps the whole run.
 */
function decideLeftovers(
  leftovers: readonly Leftover[],
  running: ReadonlySet<string>,
  policy: RetentionPolicy,
  now: Date,
): { decisions: Decision[]; staleRuns: string[] } {
  const byRun = new Map<string, Leftover[]>();
  for (const leftover of leftovers) {
    const list = byRun.get(leftover.runId) ?? [];
    list.push(leftover);
    byRun.set(leftover.runId, list);
  }

  const decisions: Decision[] = [];
  const staleRuns: string[] = [];
  const runs = [...byRun].sort(([a], [b]) => compareText(a, b));
  for (const [runId, items] of runs) {
    const times = items
      .map((item) => Date.parse(item.createdAt ?? ''))
      .filter((time) => Number.isFinite(time));
    const newest = times.length > 0 ? Math.max(...times) : undefined;
    const ageHours =
      newest === undefined ? undefined : (now.getTime() - newest) / HOUR_MS;

    let action: Action;
    let reason: Reason;
    if (running.has(runId)) {
      action = 'keep';
      reason = {
        code: 'build-running',
        text: `the build of run ${runId} is still running`,
      };
    } else if (ageHours !== undefined && ageHours < policy.leftoverAgeHours) {
      action = 'keep';
      reason = {
        code: 'recent-leftover',
        text:
          `newest resource of run ${runId} is ${formatAge(ageHours)} old, ` +
          `under ${policy.leftoverAgeHours} h`,
      };
    } else {
      action = 'delete';
      staleRuns.push(runId);
      reason = {
        code: 'stale-leftover',
        text:
          ageHours === undefined
            ? `build of run ${runId} is over; age unknown ` +
              '(security groups carry no creation time)'
            : `build of run ${runId} is over; newest resource ` +
              `${formatAge(ageHours)} old`,
      };
    }
    for (const item of items) {
      decisions.push({
        kind: item.kind,
        id: item.id,
        name: item.name,
        runId,
        createdAt: item.createdAt,
        action,
        reasons: [reason],
      });
    }
  }
  return { decisions, staleRuns };
}

/**
 * Keeps deletions within the cap, oldest first (images before orphan
 * snapshots); the rest are kept this run, their delete reason still shown.
 */
function applyCap(decisions: Decision[], maxDeletes: number): Decision[] {
  const deletes = decisions
    .filter((decision) => decision.action === 'delete')
    .sort(
      (a, b) =>
        kindRank(a.kind) - kindRank(b.kind) ||
        compareText(a.createdAt ?? '', b.createdAt ?? '') ||
        compareText(a.id, b.id),
    );
  const deferred = new Set(deletes.slice(maxDeletes));
  if (deferred.size === 0) {
    return decisions;
  }
  return decisions.map((decision) =>
    deferred.has(decision)
      ? {
          ...decision,
          action: 'keep',
          reasons: [
            {
              code: 'deletion-cap',
              text: `deletion cap of ${maxDeletes} reached this run`,
            },
            ...decision.reasons,
          ],
        }
      : decision,
  );
}

// ------------------------------------------------------------- helpers

function ageReason(
  createdAt: string | undefined,
  graceHours: number,
  now: Date,
): Reason | undefined {
  const created = Date.parse(createdAt ?? '');
  if (!Number.isFinite(created)) {
    return { code: 'unknown-age', text: 'creation time unknown' };
  }
  const ageHours = (now.getTime() - created) / HOUR_MS;
  if (ageHours < graceHours) {
    return {
      code: 'grace-window',
      text:
        `younger than the ${graceHours} h grace window ` +
        `(${formatAge(ageHours)} old)`,
    };
  }
  return undefined;
}

function formatAge(hours: number): string {
  const safe = Math.max(0, hours);
  if (safe < 1) {
    return `${Math.round(safe * 60)} min`;
  }
  if (safe < 48) {
    return `${Math.round(safe)} h`;
  }
  return `${Math.round(safe / 24)} d`;
}

function summarize(refs: readonly string[]): string {
  const shown = refs.slice(0, REFS_SHOWN).join(', ');
  const more = refs.length - REFS_SHOWN;
  return more > 0 ? `${shown} and ${more} more` : shown;
}

function templateLabel(id: string, name: string | undefined): string {
  return name === undefined ? id : `${id} (${name})`;
}

function profileOf(image: { readonly tags: Tags }): string {
  return image.tags[TAG_PROFILE] ?? '(none)';
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) {
    map.set(key, [value]);
  } else {
    list.push(value);
  }
}

function kindRank(kind: CandidateKind): number {
  return kind === 'image' ? 0 : kind === 'snapshot' ? 1 : 2;
}

/** Plain code-unit order: ISO times and ids sort right without a collator. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function newestFirst(
  a: { readonly createdAt?: string },
  b: { readonly createdAt?: string },
): number {
  return compareText(b.createdAt ?? '', a.createdAt ?? '');
}

function byProfileThenNewest(a: InventoryImage, b: InventoryImage): number {
  return (
    compareText(profileOf(a), profileOf(b)) ||
    compareText(b.createdAt, a.createdAt) ||
    compareText(a.imageId, b.imageId)
  );
}
