import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalImageStore } from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import {
  localCleanupDeps,
  runCleanup,
} from '../../functions/lib/retention/index.ts';
import {
  hoursAgo,
  NOW,
  POLICY,
  putLocalImage,
  putLocalSnapshot,
} from './fixtures.ts';

describe('local cleanup', () => {
  let paths: LocalPaths;
  let store: LocalImageStore;
  beforeEach(async () => {
    paths = localPaths(await mkdtemp(join(tmpdir(), 'sbc-retention-')));
    store = new LocalImageStore(paths);
  });
  afterEach(async () => {
    await rm(paths.home, { recursive: true, force: true });
  });

  it('removes an old never-validated image with its snapshot folder', async () => {
    // Prepare
    await putLocalImage(store, 'img-old');
    await putLocalImage(store, 'img-new', { createdAt: hoursAgo(2) });

    // Act
    const report = await runCleanup(localCleanupDeps({ paths }), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.deleted).toEqual(['img-old', 'snap-old']);
    expect(existsSync(join(paths.images, 'img-old'))).toBe(false);
    expect(existsSync(store.snapshotDir('snap-old'))).toBe(false);
    expect(existsSync(join(paths.images, 'img-new'))).toBe(true);
    expect(existsSync(store.snapshotDir('snap-new'))).toBe(true);
  });

  it('keeps every validated image while no publisher tells what is published', async () => {
    // Prepare
    for (const n of [1, 2, 3]) {
      await putLocalImage(store, `img-v${n}`, {
        validated: true,
        createdAt: hoursAgo(100 * n),
      });
    }

    // Act
    const report = await runCleanup(localCleanupDeps({ paths }), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.deleted).toEqual([]);
    const unknown = report.decisions.find((d) => d.id === 'img-v3');
    expect(unknown?.reasons.map((r) => r.text)).toEqual([
      'validated, and the published values are unknown',
    ]);
  });

  it('keeps published values the publisher reports, beyond the newest validated', async () => {
    // Prepare
    for (const n of [1, 2, 3, 4]) {
      await putLocalImage(store, `img-v${n}`, {
        validated: true,
        createdAt: hoursAgo(100 * n),
      });
    }
    const publisher = {
      history: async (profile: string) =>
        profile === 'edge' ? ['img-v1', 'img-v4'] : [],
    };

    // Act
    const report = await runCleanup(localCleanupDeps({ paths, publisher }), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.deleted).toEqual(['img-v3', 'snap-v3']);
    expect(existsSync(join(paths.images, 'img-v4'))).toBe(true);
  });

  it('keeps the images of a run whose work folder still exists', async () => {
    // Prepare
    await putLocalImage(store, 'img-run', { runId: 'run-9' });
    await mkdir(join(paths.work, 'run-9'), { recursive: true });

    // Act
    const report = await runCleanup(localCleanupDeps({ paths }), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.deleted).toEqual([]);
    expect(report.decisions[0]?.reasons.map((r) => r.code)).toEqual([
      'build-running',
    ]);
  });

  it('removes an old snapshot folder that no image uses', async () => {
    // Prepare
    await putLocalSnapshot(store, 'snap-lost', hoursAgo(24 * 10));
    await putLocalSnapshot(store, 'snap-fresh', hoursAgo(1));

    // Act
    const report = await runCleanup(localCleanupDeps({ paths }), {
      dryRun: false,
      policy: POLICY,
      now: NOW,
    });

    // Assess
    expect(report.deleted).toEqual(['snap-lost']);
    expect(existsSync(store.snapshotDir('snap-fresh'))).toBe(true);
  });

  it('changes nothing on disk in a dry run', async () => {
    await putLocalImage(store, 'img-old');

    const report = await runCleanup(localCleanupDeps({ paths }), {
      dryRun: true,
      policy: POLICY,
      now: NOW,
    });

    expect(report.decisions.map((d) => d.action)).toEqual(['delete']);
    expect(existsSync(join(paths.images, 'img-old'))).toBe(true);
    expect(existsSync(store.snapshotDir('snap-old'))).toBe(true);
  });
});
