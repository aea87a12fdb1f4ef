import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LocalAttestationStore,
  LocalKeySigner,
  localKeyFiles,
  type Statement,
} from '../../functions/lib/attest/index.ts';
import {
  TAG_BASE_IMAGE,
  TAG_SOURCE_DIRTY,
  TAG_SOURCE_REVISION,
  TAG_TEMPLATE_DIGEST,
} from '../../functions/lib/constants.ts';
import { command } from '../../functions/lib/local/command.ts';
import {
  LOCAL_OWNER_ID,
  LocalImageStore,
} from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import { readSourceState } from '../../functions/lib/local/pipeline.ts';
import {
  type SignInput,
  signImage,
} from '../../functions/lib/pipeline/sign.ts';

const git = (dir: string, ...args: string[]) =>
  command('git', [
    '-C',
    dir,
    '-c',
    'user.name=sbc-ami tests',
    '-c',
    'user.email=tests@example.invalid',
    ...args,
  ]);

describe('readSourceState', () => {
  let repo: string;
  beforeEach(async () => {
    repo = await mkdtemp(join(tmpdir(), 'sbc-ami-git-'));
    await git(repo, 'init', '--quiet');
    await writeFile(join(repo, 'build.sh'), 'echo build\n');
    await git(repo, 'add', 'build.sh');
    await git(repo, 'commit', '--quiet', '-m', 'first');
  });
  afterEach(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it('says clean for a checkout that is its commit', async () => {
    // Act
    const state = await readSourceState(repo);

    // Assess
    expect(state.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(state).toMatchObject({ dirty: false, changes: [] });
  });

  it('says dirty, with the paths, for a changed or an untracked file', async () => {
    // Prepare
    await writeFile(join(repo, 'build.sh'), 'echo changed\n');
    await writeFile(join(repo, 'new.sh'), 'echo new\n');

    // Act
    const state = await readSourceState(repo);

    // Assess
    expect(state.dirty).toBe(true);
    expect(state.changes).toEqual([' M build.sh', '?? new.sh']);
    expect(state.revision).toBe((await git(repo, 'rev-parse', 'HEAD')).trim());
  });
});

describe('signImage (local provenance)', () => {
  let paths: LocalPaths;
  let images: LocalImageStore;
  beforeEach(async () => {
    paths = localPaths(await mkdtemp(join(tmpdir(), 'sbc-ami-sign-')));
    images = new LocalImageStore(paths);
  });
  afterEach(async () => {
    await rm(paths.home, { recursive: true, force: true });
  });

  async function signedWith(tags: Record<string, string>): Promise<Statement> {
    await images.putImage({
      imageId: 'img-0123456789abcdef',
      name: 'sbc-lab',
      state: 'available',
      createdAt: '2026-01-01T00:00:00.000Z',
      architecture: 'x86_64',
      ownerId: LOCAL_OWNER_ID,
      public: false,
      tags: {
        [TAG_BASE_IMAGE]: 'img-base',
        [TAG_TEMPLATE_DIGEST]: 'b'.repeat(64),
        [TAG_SOURCE_REVISION]: 'c'.repeat(40),
        ...tags,
      },
      blockDevices: [{ deviceName: '/dev/xvda', snapshotId: 'snap-1' }],
    });
    const input: SignInput = {
      runId: 'sbc-0123456789abcdef',
      execution: 'lab-local-0123456789abcdef',
      imageId: 'img-0123456789abcdef',
      buildId: 'local-build:sbc-0123456789abcdef:1',
      run: {
        runId: 'sbc-0123456789abcdef',
        execution: 'lab-local-0123456789abcdef',
        source: 'local',
        startedAt: '2026-01-01T00:00:00.000Z',
        profileName: 'lab',
        profile: { key: '/srv/lab.json', digest: 'd'.repeat(64) },
        fqdn: 'sbc.example.com',
        baseImageId: 'img-base',
        baseImageName: 'debian-12-minbase-test',
      },
      smoke: { ok: true },
    };
    const { location } = await signImage(input, {
      images,
      signer: await LocalKeySigner.open(localKeyFiles(paths).privateKey),
      attestations: new LocalAttestationStore(paths),
      region: 'local',
      builderVersion: '0.1.0',
      now: () => new Date('2026-01-01T00:10:00.000Z'),
    });
    const envelope = JSON.parse(
      await readFile(fileURLToPath(location), 'utf8'),
    );
    return JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
  }

  it('records sourceDirty: true for an image built from uncommitted changes', async () => {
    // Act
    const statement = await signedWith({ [TAG_SOURCE_DIRTY]: 'true' });

    // Assess
    const definition = statement.predicate.buildDefinition;
    expect(definition.internalParameters?.sourceDirty).toBe(true);
    expect(definition.resolvedDependencies[0]?.digest?.gitCommit).toBe(
      'c'.repeat(40),
    );
  });

  it('records sourceDirty: false for a clean checkout, and nothing when unknown', async () => {
    // Act
    const clean = await signedWith({ [TAG_SOURCE_DIRTY]: 'false' });
    const unknown = await signedWith({});

    // Assess
    expect(clean.predicate.buildDefinition.internalParameters).toMatchObject({
      sourceDirty: false,
    });
    expect(
      unknown.predicate.buildDefinition.internalParameters,
    ).not.toHaveProperty('sourceDirty');
  });
});
