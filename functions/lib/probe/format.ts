import Table from 'cli-table3';
import type { ProbeReport } from './types.ts';

/** The report as a table for a person: one row per check, verdict first. */
export function formatReport(report: ProbeReport): string {
  const passed = report.checks.filter((check) => check.ok).length;
  const target =
    report.sni === report.host
      ? report.host
      : `${report.host} (SNI ${report.sni})`;
  const verdict = report.ok ? 'PASS' : 'FAIL';
  const summary =
    `${verdict}: ${target}, ${passed} of ${report.checks.length} checks ` +
    `passed in ${Math.round(report.durationMs)} ms`;

  const table = new Table({
    head: ['check', 'result', 'ms', 'detail'],
    colWidths: [18, 8, 9, 62],
    colAligns: ['left', 'left', 'right', 'left'],
    wordWrap: true,
    // No colours: the table goes to logs and pipes as often as to a tty.
    style: { head: [], border: [] },
  });
  for (const check of report.checks) {
    table.push([
      check.name,
      check.ok ? 'pass' : 'FAIL',
      check.durationMs.toFixed(1),
      check.detail,
    ]);
  }
  return `${table.toString()}\n${summary}`;
}
