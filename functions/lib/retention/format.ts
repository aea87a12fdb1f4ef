import Table from 'cli-table3';
import type { CleanupReport } from './cleanup.ts';
import type { Decision } from './planner.ts';

const NAME_WIDTH = 26;
const REASON_WIDTH = 52;

/**
 * The report for a person: one row per candidate with keep or delete and
 * every reason, then what was deleted, what failed and what is left.
 */
export function formatCleanupTable(report: CleanupReport): string {
  const table = new Table({
    head: ['kind', 'id', 'name / profile', 'created', 'action', 'reasons'],
    colWidths: [null, null, NAME_WIDTH, null, null, REASON_WIDTH],
    wordWrap: true,
    // Plain text: the table goes to files and CI logs as often as to a tty.
    style: { head: [], border: [], compact: true },
  });
  for (const decision of report.decisions) {
    const label = [decision.name, decision.profile]
      .filter((part) => part !== undefined && part !== '')
      .join(' / ');
    table.push([
      decision.kind,
      decision.id,
      label,
      decision.createdAt?.slice(0, 10) ?? '-',
      decision.action,
      reasonsOf(decision),
    ]);
  }

  const lines: string[] = [];
  if (report.dryRun) {
    lines.push(
      'dry run: nothing is deleted; --apply deletes the rows marked delete',
    );
  }
  if (report.decisions.length === 0) {
    lines.push('no candidates: nothing made by this pipeline was found');
  } else {
    lines.push(table.toString());
  }
  lines.push(summaryLine(report));
  for (const failure of report.failed) {
    lines.push(`failed: ${failure.id}: ${failure.reason}`);
  }
  if (report.leftovers.leftBehind.length > 0) {
    lines.push(
      `left behind, to delete by hand: ${report.leftovers.leftBehind.join(', ')}`,
    );
  }
  return lines.join('\n');
}

function reasonsOf(decision: Decision): string {
  const parts = decision.reasons.map((reason) => reason.text);
  if (decision.kind === 'image' && decision.action === 'delete') {
    const snapshots = decision.snapshotIds ?? [];
    parts.push(
      snapshots.length > 0
        ? `then deletes ${snapshots.join(', ')}`
        : 'no recorded snapshots',
    );
  }
  if (decision.sharedSnapshotIds !== undefined) {
    parts.push(
      `leaves ${decision.sharedSnapshotIds.join(', ')} (another image uses it)`,
    );
  }
  return parts.join('; ');
}

function summaryLine(report: CleanupReport): string {
  const toDelete = report.decisions.filter((d) => d.action === 'delete');
  const kept = report.decisions.length - toDelete.length;
  const head = `${report.decisions.length} candidates: ${kept} kept, ${toDelete.length} to delete`;
  if (report.dryRun) {
    return `${head}; dry run, nothing was deleted`;
  }
  const gone = report.alreadyGone?.length ?? 0;
  const already = gone > 0 ? ` (${gone} already gone)` : '';
  return (
    `${head}; images and snapshots deleted ${report.deleted.length}` +
    `${already}, ` +
    `leftovers removed ${report.leftovers.removed.length}, ` +
    `failed ${report.failed.length}`
  );
}
