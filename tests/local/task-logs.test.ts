import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ImageNotFoundError } from '../../functions/lib/errors.ts';
import { summarizeResult, taskHandler } from '../../functions/lib/handler.ts';
import { routeTaskLogs } from '../../functions/lib/local/task-logs.ts';

// The logger takes its level once, when loaded, and each invocation goes
// back to it: INFO as in a real run, not the suite's SILENT.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/** The Lambda context a Task handler gets, for function `name`. */
function context(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
    memoryLimitInMB: '512',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/local/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

const Input = z.strictObject({ runId: z.string(), imageId: z.string() });

describe('taskHandler logging', () => {
  let dir: string;
  let file: string;
  let restore: () => Promise<void>;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbc-ami-logs-'));
    file = join(dir, 'pipeline.log');
    restore = await routeTaskLogs(file);
  });
  afterEach(async () => {
    await restore();
    await rm(dir, { recursive: true, force: true });
  });

  async function lines(): Promise<Array<Record<string, unknown>>> {
    await restore();
    restore = async () => {};
    const text = await readFile(file, 'utf8');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line));
  }

  it('writes one INFO line with task, duration and a small result on success', async () => {
    // Prepare: a result with a report inside, as SmokeTest returns.
    const handler = taskHandler(Input, async (input) => ({
      imageId: input.imageId,
      state: 'available',
      snapshotIds: ['snap-1', 'snap-2'],
      report: { ok: true, checks: [{ name: 'tls', detail: 'x'.repeat(500) }] },
    }));

    // Act
    await handler({ runId: 'sbc-1', imageId: 'img-1' }, context('CheckImage'));

    // Assess
    const logged = await lines();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 'INFO',
      message: 'task finished',
      task: 'CheckImage',
      runId: 'sbc-1',
      amiId: 'img-1',
      result: {
        imageId: 'img-1',
        state: 'available',
        snapshotIdsCount: 2,
        report: { ok: true, checksCount: 1 },
      },
    });
    expect(logged[0]?.durationMs).toEqual(expect.any(Number));
    expect(JSON.stringify(logged[0])).not.toContain('x'.repeat(200));
  });

  it('names the run a Task made, as Prepare does, in its finish line', async () => {
    // Prepare: the event has no run id yet; the result has one.
    const handler = taskHandler(
      z.strictObject({ key: z.string() }),
      async () => ({
        runId: 'sbc-3',
        execution: 'lab-3',
      }),
    );

    // Act
    await handler({ key: 'profiles/lab.json' }, context('Prepare'));

    // Assess
    const logged = await lines();
    expect(logged[0]).toMatchObject({
      task: 'Prepare',
      runId: 'sbc-3',
      execution: 'lab-3',
    });
  });

  it('writes the failure with its duration and error name, and no finish line', async () => {
    // Prepare
    const handler = taskHandler(Input, async (input) => {
      throw new ImageNotFoundError(`image ${input.imageId} does not exist`);
    });

    // Act
    const call = handler(
      { runId: 'sbc-2', imageId: 'img-2' },
      context('CheckImage'),
    );

    // Assess
    await expect(call).rejects.toThrow(ImageNotFoundError);
    const logged = await lines();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 'ERROR',
      message: 'task failed',
      task: 'CheckImage',
      runId: 'sbc-2',
      error: { name: 'ImageNotFoundError' },
    });
    expect(logged[0]?.durationMs).toEqual(expect.any(Number));
  });
});

describe('summarizeResult', () => {
  it('keeps ids and states, counts lists and leaves deeper objects out', () => {
    // Act
    const summary = summarizeResult({
      buildId: 'b-1',
      status: 'IN_PROGRESS',
      attempt: 1,
      build: { phase: 'BUILD', logs: { group: 'g', stream: 's' } },
      candidates: [1, 2, 3],
      missing: null,
    });

    // Assess
    expect(summary).toEqual({
      buildId: 'b-1',
      status: 'IN_PROGRESS',
      attempt: 1,
      build: { phase: 'BUILD' },
      candidatesCount: 3,
      missing: null,
    });
  });
});
