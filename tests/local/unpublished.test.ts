import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  TAG_BASE_IMAGE,
  TAG_RUN_ID,
  TAG_VALIDATED,
} from '../../functions/lib/constants.ts';
import {
  LOCAL_OWNER_ID,
  LocalImageStore,
  SNAPSHOT_FILE,
} from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import {
  LocalRegistryPublisher,
  type Registry,
} from '../../functions/lib/local/publisher.ts';
import { discardUnpublished } from '../../functions/lib/local/unpublished.ts';

const RUN_A = 'sbc-aaaaaaaaaaaaaaaa';
const RUN_B = 'sbc-bbbbbbbbbbbbbbbb';
const PROFILE = 'genesys-byoc-example';

describe('discardUnpublished', () => {
  let paths: LocalPaths;
  let images: LocalImageStore;
  let registry: LocalRegistryPublisher;
  beforeEach(async () => {
    paths = localPaths(await mkdtemp(join(tmpdir(), 'sbc-ami-unpub-')));
    images = new LocalImageStore(paths);
    registry = new LocalRegistryPublisher(paths.registry);
  });
  afterEach(async () => {
    await rm(paths.home, { recursive: true, force: true });
  });

  /** An image of a run, with its snapshot file and attestation. */
  async function image(id: string, runId: string, validated = false) {
    const snapshotId = `snap-${id.slice(4)}`;
    const tags = {
      [TAG_RUN_ID]: runId,
      [TAG_BASE_IMAGE]: 'img-base',
      ...(validated ? { [TAG_VALIDATED]: 'true' } : {}),
    };
    await mkdir(images.snapshotDir(snapshotId), { recursive: true });
    await writeFile(join(images.snapshotDir(snapshotId), SNAPSHOT_FILE), id);
    await images.putSnapshot({
      snapshotId,
      state: 'completed',
      encrypted: false,
      tags,
    });
    await images.putImage({
      imageId: id,
      name: `sbc-${id}`,
      state: 'available',
      createdAt: new Date().toISOString(),
      architecture: 'x86_64',
      ownerId: LOCAL_OWNER_ID,
      public: false,
      tags,
      blockDevices: [{ deviceName: '/dev/xvda', snapshotId }],
    });
    await mkdir(paths.attestations, { recursive: true });
    await writeFile(join(paths.attestations, `${id}.intoto.json`), '{}');
    return snapshotId;
  }

  async function publish(imageId: string, runId: string) {
    await registry.publish({
      imageId,
      runId,
      profileName: PROFILE,
      description: `${imageId} of ${runId}`,
    });
  }

  it('keeps an image of the run that a later run pushed down the history', async () => {
    // Prepare: run A published, then run B published over it.
    await image('img-a1', RUN_A);
    await image('img-b1', RUN_B);
    await publish('img-a1', RUN_A);
    await publish('img-b1', RUN_B);

    // Act
    const report = await discardUnpublished(images, registry, RUN_A);

    // Assess
    expect(report).toEqual({ removed: [], leftBehind: [] });
    expect(await images.describeImage('img-a1')).toBeDefined();
    expect(await images.describeImage('img-b1')).toBeDefined();
  });

  it('discards the run’s unpublished images with snapshots and attestations', async () => {
    // Prepare
    await image('img-a1', RUN_A);
    await publish('img-a1', RUN_A);
    const unpublished = await image('img-a2', RUN_A);
    const validated = await image('img-a3', RUN_A, true);
    await image('img-b2', RUN_B);

    // Act
    const report = await discardUnpublished(images, registry, RUN_A);

    // Assess
    expect(report.leftBehind).toEqual([]);
    expect(report.removed).toEqual(
      expect.arrayContaining([
        'image img-a2 (never published)',
        `snapshot ${unpublished} (never published)`,
        'image img-a3 (never published)',
        `snapshot ${validated} (never published)`,
        `attestation ${join(paths.attestations, 'img-a2.intoto.json')}`,
      ]),
    );
    const left = (await images.listImages()).map((i) => i.imageId).sort();
    expect(left).toEqual(['img-a1', 'img-b2']);
    expect(existsSync(images.snapshotDir(unpublished))).toBe(false);
    expect(existsSync(join(paths.attestations, 'img-a2.intoto.json'))).toBe(
      false,
    );
    expect(existsSync(join(paths.attestations, 'img-a1.intoto.json'))).toBe(
      true,
    );
  });

  it('keeps validated images when asked, as a sweep of a dead run does', async () => {
    // Prepare
    await image('img-a2', RUN_A);
    await image('img-a3', RUN_A, true);

    // Act
    await discardUnpublished(images, registry, RUN_A, { keepValidated: true });

    // Assess
    const left = (await images.listImages()).map((i) => i.imageId);
    expect(left).toEqual(['img-a3']);
  });

  it('deletes a snapshot of the run that no image uses', async () => {
    // Prepare: a build stopped between its snapshot and its image.
    await mkdir(images.snapshotDir('snap-orphan'), { recursive: true });
    await images.putSnapshot({
      snapshotId: 'snap-orphan',
      state: 'completed',
      encrypted: false,
      tags: { [TAG_RUN_ID]: RUN_A },
    });

    // Act
    const report = await discardUnpublished(images, registry, RUN_A);

    // Assess
    expect(report.removed).toEqual(['snapshot snap-orphan (no image uses it)']);
    expect(await images.listSnapshots()).toEqual([]);
  });

  it('discards nothing and says why when the registry cannot be read', async () => {
    // Prepare
    await image('img-a2', RUN_A);
    await writeFile(paths.registry, JSON.stringify({ not: 'a registry' }));

    // Act
    const report = await discardUnpublished(images, registry, RUN_A);

    // Assess
    expect(report.removed).toEqual([]);
    expect(report.leftBehind).toEqual([
      expect.stringMatching(/^image img-a2 of run .*registry cannot be read/),
    ]);
    expect(await images.describeImage('img-a2')).toBeDefined();
  });

  it('reads every profile of the registry, not only the image’s own', async () => {
    // Prepare: the image is published under another profile name.
    await image('img-a1', RUN_A);
    const other: Registry = {
      profiles: {
        'another-profile': {
          current: 'img-a1',
          history: [
            {
              imageId: 'img-a1',
              runId: RUN_A,
              publishedAt: new Date().toISOString(),
              description: '',
            },
          ],
        },
      },
    };
    await writeFile(paths.registry, JSON.stringify(other));

    // Act
    await discardUnpublished(images, registry, RUN_A);

    // Assess
    expect(await images.describeImage('img-a1')).toBeDefined();
  });
});
