import { clearScreenDown, cursorTo, moveCursor } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  DescribeExecutionCommandOutput,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { describeExecution, hasEnded } from './executions.ts';
import { readHistory } from './history.ts';
import { type Progress, summarizeHistory } from './progress.ts';
import {
  formatExecution,
  formatHeader,
  formatRow,
  formatVerdict,
  rowLabel,
} from './render.ts';
import type { ExecutionRef } from './target.ts';

/** Shows an execution's progress, once or again on every poll. */
export interface ProgressView {
  show(
    execution: DescribeExecutionCommandOutput,
    progress: Progress,
    now: Date,
  ): void;
}

/** A stream to redraw on, with its size when it is a terminal. */
export type Terminal = NodeJS.WritableStream & {
  readonly columns?: number;
  readonly rows?: number;
};

/** A terminal: the whole picture is drawn again in place on every poll. */
export class RedrawView implements ProgressView {
  readonly #stream: Terminal;
  #drawnRows = 0;

  constructor(stream: Terminal) {
    this.#stream = stream;
  }

  show(
    execution: DescribeExecutionCommandOutput,
    progress: Progress,
    now: Date,
  ): void {
    let lines = formatExecution(execution, progress, now);
    // The cursor cannot go back above the top of the screen: a picture
    // taller than the terminal keeps its newest lines.
    const height = this.#stream.rows;
    if (height !== undefined && height > 2 && lines.length >= height) {
      const kept = lines.slice(-(height - 2));
      lines = [`  (${lines.length - kept.length} lines above)`, ...kept];
    }
    if (this.#drawnRows > 0) {
      moveCursor(this.#stream, 0, -this.#drawnRows);
      cursorTo(this.#stream, 0);
      clearScreenDown(this.#stream);
    }
    this.#stream.write(`${lines.join('\n')}\n`);
    // A line wider than the terminal takes more than one row to go back over.
    const columns = this.#stream.columns ?? 80;
    this.#drawnRows = lines.reduce(
      (rows, line) => rows + Math.max(1, Math.ceil(line.length / columns)),
      0,
    );
  }
}

/**
 * A log or a pipe: nothing is redrawn, so a row is written once it can no
 * longer change, and a state that starts running is announced once.
 */
export class AppendView implements ProgressView {
  readonly #write: (line: string) => void;
  #headerWritten = false;
  #rowsWritten = 0;
  #announced = -1;

  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  show(
    execution: DescribeExecutionCommandOutput,
    progress: Progress,
    now: Date,
  ): void {
    if (!this.#headerWritten) {
      formatHeader(execution).forEach(this.#write);
      this.#headerWritten = true;
    }

    // While it runs, the last row may still take more loop checks.
    const ended = hasEnded(execution.status);
    const { rows } = progress;
    const final = ended ? rows.length : Math.max(0, rows.length - 1);
    for (const row of rows.slice(this.#rowsWritten, final)) {
      formatRow(row, now).forEach(this.#write);
    }
    this.#rowsWritten = Math.max(this.#rowsWritten, final);

    const last = rows.at(-1);
    if (
      !ended &&
      last?.kind === 'state' &&
      this.#announced !== rows.length - 1
    ) {
      this.#write(`  ..      ${rowLabel(last)}`);
      this.#announced = rows.length - 1;
    }
    if (ended) {
      this.#write(formatVerdict(execution, now));
    }
  }
}

export interface WatchOptions {
  readonly client: SFNClient;
  readonly execution: ExecutionRef;
  readonly view: ProgressView;
  /** Between polls; the caller bounds it. */
  readonly intervalMs: number;
  /** Stops the watch (Ctrl-C); the wait between polls ends at once. */
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

/**
 * Polls the execution and its history until it ends, showing progress on
 * every poll; resolves to its last description. Only a display loop: the
 * SDK retries throttled calls, and the execution's own timeout bounds it.
 */
export async function watchExecution(
  options: WatchOptions,
): Promise<DescribeExecutionCommandOutput> {
  const now = options.now ?? (() => new Date());
  for (;;) {
    options.signal?.throwIfAborted();
    // Described first: a history read after an end holds the end's events.
    const execution = await describeExecution(
      options.client,
      options.execution,
    );
    const events = await readHistory(options.client, options.execution.arn);
    options.view.show(execution, summarizeHistory(events), now());
    if (hasEnded(execution.status)) {
      return execution;
    }
    await sleep(options.intervalMs, undefined, { signal: options.signal });
  }
}
