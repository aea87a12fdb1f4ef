import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
} from '@aws-sdk/client-ec2';
import {
  afterEach,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { main } from '../../cli/main.ts';
import { localPolicy } from '../../functions/lib/local/deps.ts';
import { LocalImageStore } from '../../functions/lib/local/image-store.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import { LocalRegistryPublisher } from '../../functions/lib/local/publisher.ts';
import {
  type CleanupReport,
  localCleanupDeps,
  runCleanup,
} from '../../functions/lib/retention/index.ts';
import {
  type AwsMocks,
  awsError,
  ec2Image,
  MUTATING,
  mockAws,
  putLocalImage,
  sentTo,
} from './fixtures.ts';

/** The CLI plans against the real clock, not the tests' fixed one. */
function ago(hours: number): string {
  return new Date(Date.now() - hours * 3_600_000).toISOString();
}

function cleanup(...args: string[]): Promise<number> {
  return main(['node', 'sbc-ami', 'cleanup', ...args]);
}

describe('sbc-ami cleanup', () => {
  let log: MockInstance<typeof console.log>;
  let error: MockInstance<typeof console.error>;
  beforeEach(() => {
    log = vi.spyOn(console, 'log').mockImplementation(() => {});
    error = vi.spyOn(console, 'error').mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  const printed = () =>
    log.mock.calls.map((call) => String(call[0])).join('\n');
  const complaints = () =>
    error.mock.calls.map((call) => String(call[0])).join('\n');

  describe('usage', () => {
    it.each(['abc', '-1', '2.5', ''])(
      'exits 2 naming the flag when --max-deletes is %j',
      async (value) => {
        // Act
        const code = await cleanup('--local', '--max-deletes', value);

        // Assess
        expect(code).toBe(2);
        expect(complaints()).toContain('--max-deletes must be a whole number');
      },
    );

    it('exits 2 when both --dry-run and --apply are given', async () => {
      const code = await cleanup('--local', '--dry-run', '--apply');

      expect(code).toBe(2);
      expect(complaints()).toContain('--dry-run or --apply, not both');
    });

    it('exits 2 naming the variable when a policy variable is malformed', async () => {
      vi.stubEnv('RETENTION_GRACE_HOURS', 'soon');

      const code = await cleanup('--local');

      expect(code).toBe(2);
      expect(complaints()).toContain('RETENTION_GRACE_HOURS');
    });

    it('exits 2 when the CodeBuild project is unknown', async () => {
      vi.stubEnv('CODEBUILD_PROJECT', '');

      const code = await cleanup();

      expect(code).toBe(2);
      expect(complaints()).toContain('--project');
    });

    it('exits 2 naming --parameter-prefix when it is not an SSM path', async () => {
      const code = await cleanup('--project', 'p', '--parameter-prefix', 'x');

      expect(code).toBe(2);
      expect(complaints()).toContain('--parameter-prefix');
    });
  });

  describe('--local', () => {
    let paths: LocalPaths;
    beforeEach(async () => {
      paths = localPaths(await mkdtemp(join(tmpdir(), 'sbc-cli-retention-')));
      vi.stubEnv('SBC_AMI_HOME', paths.home);
      const store = new LocalImageStore(paths);
      await putLocalImage(store, 'img-old', { createdAt: ago(24 * 30) });
      await putLocalImage(store, 'img-new', { createdAt: ago(0.5) });
    });
    afterEach(async () => {
      await rm(paths.home, { recursive: true, force: true });
    });

    it('is a dry run by default: a table of every candidate, nothing deleted', async () => {
      // Act
      const code = await cleanup('--local');

      // Assess
      expect(code).toBe(0);
      const output = printed();
      expect(output).toMatch(/│ img-old +│.*│ delete +│ never validated/);
      expect(output).toMatch(/│ img-new +│.*│ keep +│ younger than the 1 h/);
      expect(output).toContain('dry run, nothing was deleted');
      expect(existsSync(join(paths.images, 'img-old'))).toBe(true);
    });

    it('deletes with --apply and prints JSON with --json', async () => {
      // Act
      const code = await cleanup('--local', '--apply', '--json');

      // Assess
      expect(code).toBe(0);
      const report = JSON.parse(printed()) as CleanupReport;
      expect(report.dryRun).toBe(false);
      expect(report.deleted).toEqual(['img-old', 'snap-old']);
      expect(existsSync(join(paths.images, 'img-old'))).toBe(false);
      expect(existsSync(join(paths.images, 'img-new'))).toBe(true);
    });

    it('honours --max-deletes 0', async () => {
      const code = await cleanup('--local', '--apply', '--max-deletes', '0');

      expect(code).toBe(0);
      expect(printed()).toContain('deletion cap of 0 reached this run');
      expect(existsSync(join(paths.images, 'img-old'))).toBe(true);
    });

    it('plans with the local pipeline policy: what the next local run deletes', async () => {
      // Prepare: older than local mode's 1 h grace, younger than AWS's 24 h.
      await putLocalImage(new LocalImageStore(paths), 'img-3h', {
        createdAt: ago(3),
      });
      const nextRun = await runCleanup(
        localCleanupDeps({
          paths,
          publisher: new LocalRegistryPublisher(paths.registry),
        }),
        { dryRun: true, policy: localPolicy() },
      );

      // Act
      const code = await cleanup('--local', '--json');

      // Assess
      expect(code).toBe(0);
      const report = JSON.parse(printed()) as CleanupReport;
      const actions = (r: CleanupReport) =>
        Object.fromEntries(r.decisions.map((d) => [d.id, d.action]));
      expect(actions(report)).toEqual(actions(nextRun));
      expect(actions(report)).toMatchObject({
        'img-old': 'delete',
        'img-3h': 'delete',
        'img-new': 'keep',
      });
    });

    it('keeps the grace window RETENTION_GRACE_HOURS sets for --local', async () => {
      // Prepare
      vi.stubEnv('RETENTION_GRACE_HOURS', '24');
      await putLocalImage(new LocalImageStore(paths), 'img-3h', {
        createdAt: ago(3),
      });

      // Act
      const code = await cleanup('--local');

      // Assess
      expect(code).toBe(0);
      expect(printed()).toMatch(/│ img-3h +│.*│ keep +│ younger than the 24 h/);
    });

    it('refuses AWS flags', async () => {
      const code = await cleanup('--local', '--region', 'eu-west-1');

      expect(code).toBe(2);
      expect(complaints()).toContain('--region does not apply to --local');
    });
  });

  describe('AWS', () => {
    let mocks: AwsMocks;
    beforeEach(() => {
      mocks = mockAws();
      vi.stubEnv('AWS_REGION', 'eu-west-1');
      vi.stubEnv('CODEBUILD_PROJECT', 'sbc-ami-build');
      mocks.ec2.on(DescribeImagesCommand).resolves({
        Images: [
          ec2Image('ami-1', { createdAt: ago(24 * 30) }),
          ec2Image('ami-2', { createdAt: ago(24 * 40) }),
        ],
      });
      mocks.ec2.on(DeregisterImageCommand).resolves({});
      mocks.ec2.on(DeleteSnapshotCommand).resolves({});
    });
    afterEach(() => {
      mocks.restore();
    });

    const mutations = () =>
      sentTo(mocks.ec2)
        .filter((call) => MUTATING.includes(call.command))
        .map((call) => call.command);

    it('sends no mutating command without --apply', async () => {
      const code = await cleanup('--dry-run');

      expect(code).toBe(0);
      expect(mutations()).toEqual([]);
      expect(printed()).toContain('2 candidates: 0 kept, 2 to delete');
    });

    it('deletes with --apply and exits 1 when something could not be deleted', async () => {
      // Prepare
      mocks.ec2
        .on(DeregisterImageCommand, { ImageId: 'ami-2' })
        .rejects(awsError('UnauthorizedOperation', 'denied'));

      // Act
      const code = await cleanup('--apply');

      // Assess
      expect(code).toBe(1);
      expect(mutations()).toEqual([
        'DeregisterImage',
        'DeregisterImage',
        'DeleteSnapshot',
      ]);
      expect(printed()).toContain('failed: ami-2: deregister failed');
    });
  });
});
