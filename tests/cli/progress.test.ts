import { describe, expect, it } from 'vitest';
import { type StateRow, summarizeHistory } from '../../cli/lib/progress.ts';
import { formatDuration, formatRow, rowLabel } from '../../cli/lib/render.ts';
import {
  buildCheck,
  HistoryBuilder,
  loadAsl,
  SMOKE_CAUSE,
  smokeFailureHistory,
  transitions,
} from './fixtures.ts';

function stateRows(rows: ReturnType<typeof summarizeHistory>['rows']) {
  return rows.filter((row): row is StateRow => row.kind === 'state');
}

describe('history fixtures', () => {
  it('follow the transitions of the real ASL', () => {
    // Prepare
    const edges = transitions();
    const asl = loadAsl();
    const entered = smokeFailureHistory()
      .events.filter((event) => event.type?.endsWith('StateEntered'))
      .map((event) => event.stateEnteredEventDetails?.name ?? '');

    // Act
    const illegal = entered
      .slice(1)
      .map((to, index) => [entered[index] as string, to] as const)
      .filter(([from, to]) => !edges.get(from)?.has(to));

    // Assess
    expect(entered[0]).toBe(asl.StartAt);
    expect(illegal).toEqual([]);
    expect(asl.States[entered.at(-1) as string]?.Type).toBe('Fail');
  });
});

describe('summarizeHistory', () => {
  it('folds a wait loop into one row with what each check saw', () => {
    // Prepare
    const events = smokeFailureHistory().events;

    // Act
    const rows = stateRows(summarizeHistory(events).rows);

    // Assess
    const build = rows.find((row) => row.state === 'CheckBuild');
    expect(build).toMatchObject({ visits: 7, waitedIn: 'WaitForBuild' });
    expect(build?.observed).toEqual([
      ...Array(6).fill('IN_PROGRESS'),
      'SUCCEEDED',
    ]);
    expect(rowLabel(build as StateRow)).toBe(
      'CheckBuild x7 (IN_PROGRESS x6, SUCCEEDED)',
    );
    expect(rows.map((row) => row.state)).not.toContain('WaitForBuild');
    expect(rows.map((row) => row.state)).not.toContain('BuildReady');
  });

  it('counts a retry and keeps the error it retried', () => {
    const rows = stateRows(summarizeHistory(smokeFailureHistory().events).rows);

    const resolve = rows.find((row) => row.state === 'ResolveImage');

    expect(resolve).toMatchObject({
      attempts: 2,
      retried: ['Lambda.TooManyRequestsException'],
      outcome: 'ok',
    });
  });

  it('marks a caught error with where the Catch went', () => {
    const rows = stateRows(summarizeHistory(smokeFailureHistory().events).rows);

    const smoke = rows.find((row) => row.state === 'SmokeTest');

    expect(smoke?.outcome).toBe('caught');
    expect(smoke?.error?.error).toBe('SmokeTestFailedError');
    expect(smoke?.next).toBe('TerminateAfterFailure');
  });

  it('sees a caught error when the next state follows without an exit', () => {
    // Prepare
    const history = new HistoryBuilder()
      .started({})
      .taskAttempts('SmokeTest', [
        { error: 'SmokeTestFailedError', message: 'udp/5060 timeout' },
      ])
      .task('TerminateAfterFailure', [{ ok: {} }]);

    // Act
    const rows = stateRows(summarizeHistory(history.events).rows);

    // Assess
    expect(rows[0]).toMatchObject({
      state: 'SmokeTest',
      outcome: 'caught',
      next: 'TerminateAfterFailure',
    });
    expect(rows[1]).toMatchObject({ state: 'TerminateAfterFailure' });
  });

  it('gives the execution end and the Fail state it ended in', () => {
    const progress = summarizeHistory(smokeFailureHistory().events);

    expect(progress.end).toMatchObject({
      status: 'FAILED',
      error: 'SmokeTestFailedError',
      cause: `smoke test: ${SMOKE_CAUSE}`,
    });
    expect(progress.lastState).toEqual({ name: 'Failed', type: 'Fail' });
    expect(progress.current).toBeUndefined();
  });

  it('reports the wait a running loop is in and the check it leads to', () => {
    // Prepare
    const history = new HistoryBuilder()
      .started({})
      .task('StartBuild', [{ ok: buildCheck('IN_PROGRESS') }])
      .loop('WaitForBuild', 'CheckBuild', 'BuildReady', 300, [
        buildCheck('IN_PROGRESS'),
        buildCheck('IN_PROGRESS'),
      ])
      .waiting('WaitForBuild');

    // Act
    const progress = summarizeHistory(history.events);

    // Assess
    expect(progress.current).toMatchObject({
      state: 'WaitForBuild',
      waiting: true,
      leadsTo: 'CheckBuild',
    });
    const last = progress.rows.at(-1) as StateRow;
    expect(rowLabel(last)).toBe('CheckBuild x2 (IN_PROGRESS)');
  });

  it('marks the state an uncaught error failed the execution in', () => {
    const history = new HistoryBuilder()
      .started({})
      .taskAttempts('CheckBuild', [
        { error: 'States.Runtime', message: 'path $.build.poll not found' },
      ])
      .failedUncaught('States.Runtime', 'path $.build.poll not found');

    const progress = summarizeHistory(history.events);

    expect(progress.rows[0]).toMatchObject({
      state: 'CheckBuild',
      outcome: 'failed',
      error: { error: 'States.Runtime' },
    });
    expect(progress.lastState).toEqual({ name: 'CheckBuild', type: 'Task' });
  });

  it('starts a new row after a redrive', () => {
    const history = new HistoryBuilder()
      .started({})
      .taskAttempts('CheckBuild', [{ ok: buildCheck('IN_PROGRESS') }])
      .timedOut()
      .after(3600)
      .redriven(1)
      .task('CheckBuild', [{ ok: buildCheck('SUCCEEDED') }]);

    const progress = summarizeHistory(history.events);

    expect(progress.rows.map((row) => row.kind)).toEqual([
      'state',
      'redrive',
      'state',
    ]);
    expect(progress.rows[0]).toMatchObject({ outcome: 'stopped' });
    expect(progress.rows[2]).toMatchObject({ outcome: 'ok', visits: 1 });
    expect(progress.end).toBeUndefined();
  });

  it('reads events in id order whatever order the pages came in', () => {
    const events = smokeFailureHistory().events;

    const shuffled = summarizeHistory([...events].reverse());

    expect(shuffled).toEqual(summarizeHistory(events));
  });
});

describe('formatRow', () => {
  it('shows retries and the caught error under the state', () => {
    // Prepare
    const progress = summarizeHistory(smokeFailureHistory().events);
    const rows = stateRows(progress.rows);
    const now = new Date();

    // Act
    const resolve = formatRow(
      rows.find((row) => row.state === 'ResolveImage') as StateRow,
      now,
    );
    const smoke = formatRow(
      rows.find((row) => row.state === 'SmokeTest') as StateRow,
      now,
    );

    // Assess
    expect(resolve[1]?.trim()).toBe(
      'retried x1: Lambda.TooManyRequestsException',
    );
    expect(smoke[0]).toMatch(/^ {2}caught +SmokeTest +14s$/);
    expect(smoke[1]?.trim()).toBe(
      `caught SmokeTestFailedError: ${SMOKE_CAUSE} -> TerminateAfterFailure`,
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [800, '0.8s'],
    [12_400, '12s'],
    [185_000, '3m 05s'],
    [7_440_000, '2h 04m'],
  ])('renders %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
