import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress, parseCertDays } from '../../cli/commands/local.ts';
import { UsageError } from '../../cli/exit.ts';
import { main } from '../../cli/main.ts';
import { ConfigurationError } from '../../functions/lib/errors.ts';
import { localPolicy, localSettings } from '../../functions/lib/local/deps.ts';
import { readSourceRevision } from '../../functions/lib/local/pipeline.ts';

describe('sbc-ami local', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('exits 2 naming the file when the profile cannot be read', async () => {
    // Prepare
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});

    // Act
    const code = await main([
      'node',
      'sbc-ami',
      'local',
      '/nonexistent/profile.json',
    ]);

    // Assess
    expect(code).toBe(2);
    expect(errors.mock.calls.flat().join('\n')).toContain(
      '/nonexistent/profile.json',
    );
  });

  it('exits 2 for a --cert-days that is not a whole number', async () => {
    // Prepare
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});

    // Act
    const code = await main(['node', 'sbc-ami', 'local', '--cert-days', '1.5']);

    // Assess
    expect(code).toBe(2);
    expect(errors.mock.calls.flat().join('\n')).toContain('--cert-days');
  });
});

describe('parseCertDays', () => {
  it('takes whole days, negative ones included', () => {
    // Act, Assess
    expect(parseCertDays('90')).toBe(90);
    expect(parseCertDays('-1')).toBe(-1);
    expect(() => parseCertDays('ten')).toThrow(UsageError);
    expect(() => parseCertDays('ten')).toThrow('--cert-days');
  });
});

describe('localSettings', () => {
  it('allows the local debootstrap base and waives encryption and IMDSv2', () => {
    // Act
    const settings = localSettings({});

    // Assess
    expect(settings.baseImage).toEqual({
      allowedOwners: ['debian'],
      allowedNames: ['debian-12-minbase-*'],
    });
    expect(settings.image.requireEncryption).toBe(false);
    expect(settings.image.requireImdsV2).toBe(false);
    expect(settings.smoke.minDays).toBe(14);
  });
});

describe('localPolicy', () => {
  it('keeps images an hour unless RETENTION_GRACE_HOURS says otherwise', () => {
    // Act, Assess
    expect(localPolicy({}).graceHours).toBe(1);
    expect(localPolicy({ RETENTION_GRACE_HOURS: '12' }).graceHours).toBe(12);
  });
});

describe('readSourceRevision', () => {
  it('gives the full commit id of this checkout', async () => {
    // Act, Assess
    expect(await readSourceRevision()).toMatch(/^[0-9a-f]{40}$/);
  });

  it('says plainly when the folder is not a git checkout', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'sbc-ami-not-git-'));

    // Act, Assess
    try {
      await expect(readSourceRevision(dir)).rejects.toThrow(ConfigurationError);
      await expect(readSourceRevision(dir)).rejects.toThrow(
        `${dir} is not a git checkout`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Progress', () => {
  const entered = (state: string) => ({ type: 'StateEntered', state });

  it('shows a wait loop once when it starts and says what it checked when it ends', () => {
    // Prepare
    const lines: string[] = [];
    const progress = new Progress((line) => lines.push(line));

    // Act: three rounds of the build loop, then the next state.
    progress.event(entered('StartBuild'), 300);
    let ms = 400;
    for (let round = 0; round < 3; round += 1) {
      for (const state of ['WaitForBuild', 'CheckBuild', 'BuildReady']) {
        progress.event(entered(state), ms);
        ms += 10_000;
      }
    }
    progress.line('build: step 10-packages.sh');
    progress.event(entered('ResolveImage'), 62_400);

    // Assess
    expect(lines).toEqual([
      '    0.3s  StartBuild',
      '    0.4s  WaitForBuild > CheckBuild > BuildReady: a loop that ' +
        'checks the build status until it is ready',
      '         build: step 10-packages.sh',
      '   62.4s  loop done: build status checked 3 time(s) (CheckBuild) ' +
        'over 62.0 s',
      '   62.4s  ResolveImage',
    ]);
  });
});
