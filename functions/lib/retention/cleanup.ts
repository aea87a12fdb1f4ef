import { describeError } from '../errors.ts';
import type { ImageStore, SweepReport } from '../ports.ts';
import {
  type DeletionOptions,
  deleteImageAndSnapshots,
  deleteSnapshotWhenFree,
} from './deletion.ts';
import type {
  Inventory,
  InventorySource,
  Leftover,
  LeftoverLister,
  LeftoverRemover,
} from './inventory.ts';
import { type Decision, planRetention } from './planner.ts';
import { type RetentionPolicy, retentionPolicy } from './policy.ts';

/** What `runCleanup` needs; each part is a port with an AWS and a local side. */
export interface CleanupDeps {
  readonly inventory: InventorySource;
  readonly store: ImageStore;
  /** Builder leftovers; absent where there are none (local mode). */
  readonly leftovers?: LeftoverLister & LeftoverRemover;
  /** True while the build of a run is still running. */
  readonly isBuildRunning: (runId: string) => Promise<boolean>;
  /** API calls the adapters sent so far, by command. */
  readonly apiCalls?: () => Record<string, number>;
  /** Delays between "snapshot in use" retries (the count is the policy's). */
  readonly deletion?: Omit<DeletionOptions, 'inUseRetries'>;
  /** Progress lines for a person (the CLI); silent when absent. */
  readonly progress?: (line: string) => void;
}

export interface CleanupOptions {
  readonly dryRun: boolean;
  readonly policy: RetentionPolicy;
  readonly now?: Date;
}

export interface CleanupReport {
  dryRun: boolean;
  /** Every candidate, kept or deleted, with its reasons. */
  decisions: Decision[];
  /** Images and snapshots that are gone now (deleted, or already gone). */
  deleted: string[];
  /** The subset of `deleted` that was gone before this run. */
  alreadyGone?: string[];
  failed: { id: string; reason: string }[];
  leftovers: SweepReport;
  apiCalls?: Record<string, number>;
}

/**
 * Lists, plans and (unless dry run) deletes. Listing fails closed: any
 * listing error rejects before anything is deleted. Deletion goes item by
 * item; one failure is reported and the others go on.
 */
export async function runCleanup(
  deps: CleanupDeps,
  options: CleanupOptions,
): Promise<CleanupReport> {
  const now = options.now ?? new Date();
  const policy = retentionPolicy(options.policy);
  const progress = deps.progress ?? (() => {});

  progress('listing images, references and leftovers');
  const [inventory, leftovers] = await Promise.all([
    deps.inventory.list(),
    deps.leftovers?.listLeftovers() ?? Promise.resolve([]),
  ]);
  const listed: Inventory = {
    ...inventory,
    leftovers: [...(inventory.leftovers ?? []), ...leftovers],
  };

  // Ask about builds only for runs whose answer can turn a delete into a keep.
  const uncapped = planRetention(
    listed,
    { ...policy, maxDeletes: Number.POSITIVE_INFINITY },
    now,
  );
  const runIds = new Set<string>();
  for (const decision of uncapped.decisions) {
    if (decision.action === 'delete' && decision.runId !== undefined) {
      runIds.add(decision.runId);
    }
  }
  const runningRunIds: string[] = [];
  for (const runId of runIds) {
    if (await deps.isBuildRunning(runId)) {
      runningRunIds.push(runId);
    }
  }
  const plan = planRetention({ ...listed, runningRunIds }, policy, now);

  const report: CleanupReport = {
    dryRun: options.dryRun,
    decisions: plan.decisions,
    deleted: [],
    alreadyGone: [],
    failed: [],
    leftovers: { removed: [], leftBehind: [] },
  };
  if (!options.dryRun) {
    await deleteDecided(deps, policy, plan.decisions, listed, report);
  }
  if (deps.apiCalls !== undefined) {
    report.apiCalls = deps.apiCalls();
  }
  return report;
}

async function deleteDecided(
  deps: CleanupDeps,
  policy: RetentionPolicy,
  decisions: readonly Decision[],
  inventory: Inventory,
  report: CleanupReport,
): Promise<void> {
  const progress = deps.progress ?? (() => {});
  const deletion = { ...deps.deletion, inUseRetries: policy.inUseRetries };
  // Oldest first, the order the cap chose them in: a run cut short has
  // removed the oldest.
  const doomed = decisions
    .filter((decision) => decision.action === 'delete')
    .sort((a, b) => oldestFirst(a.createdAt, b.createdAt));
  const images = doomed.filter((decision) => decision.kind === 'image');
  const snapshots = doomed.filter((decision) => decision.kind === 'snapshot');

  for (const [index, decision] of images.entries()) {
    progress(`deregistering ${decision.id} (${index + 1}/${images.length})`);
    const result = await deleteImageAndSnapshots(
      deps.store,
      decision.id,
      decision.snapshotIds ?? [],
      deletion,
    );
    report.deleted.push(...result.removed, ...result.alreadyGone);
    report.alreadyGone?.push(...result.alreadyGone);
    report.failed.push(...result.errors);
  }

  for (const [index, decision] of snapshots.entries()) {
    progress(`deleting ${decision.id} (${index + 1}/${snapshots.length})`);
    try {
      const outcome = await deleteSnapshotWhenFree(
        deps.store,
        decision.id,
        deletion,
      );
      report.deleted.push(decision.id);
      if (outcome === 'already-gone') {
        report.alreadyGone?.push(decision.id);
      }
    } catch (error) {
      report.failed.push({
        id: decision.id,
        reason: `snapshot not deleted: ${describeError(error)}`,
      });
    }
  }

  const stale = new Set(
    doomed
      .filter((decision) => decision.kind !== 'image')
      .filter((decision) => decision.kind !== 'snapshot')
      .map((decision) => `${decision.kind}:${decision.id}`),
  );
  const items: Leftover[] = (inventory.leftovers ?? []).filter((leftover) =>
    stale.has(`${leftover.kind}:${leftover.id}`),
  );
  if (items.length > 0 && deps.leftovers !== undefined) {
    progress(`removing ${items.length} builder leftovers`);
    const swept = await deps.leftovers.removeLeftovers(items);
    report.leftovers = {
      removed: swept.removed,
      leftBehind: swept.leftBehind,
    };
    report.failed.push(...swept.errors);
  }
}

function oldestFirst(a = '', b = ''): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A small summary for a state machine output: it never grows with images. */
export interface CleanupSummary {
  readonly dryRun: boolean;
  readonly candidates: number;
  readonly kept: number;
  readonly toDelete: number;
  readonly deleted: number;
  readonly failed: number;
  /** The first failures, for the notification. */
  readonly failures: { id: string; reason: string }[];
  readonly leftBehind: string[];
}

const SUMMARY_ITEMS = 10;

export function summarizeCleanup(report: CleanupReport): CleanupSummary {
  const toDelete = report.decisions.filter((d) => d.action === 'delete');
  return {
    dryRun: report.dryRun,
    candidates: report.decisions.length,
    kept: report.decisions.length - toDelete.length,
    toDelete: toDelete.length,
    deleted: report.deleted.length,
    failed: report.failed.length,
    failures: report.failed.slice(0, SUMMARY_ITEMS).map((failure) => ({
      id: failure.id,
      reason: failure.reason.slice(0, 200),
    })),
    leftBehind: report.leftovers.leftBehind.slice(0, SUMMARY_ITEMS),
  };
}
