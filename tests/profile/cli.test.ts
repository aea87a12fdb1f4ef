import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from 'vitest';
import { main } from '../../cli/main.ts';
import {
  EXAMPLE_PROFILE,
  PROFILE_FILES,
  removeDir,
  tempDir,
} from './support.ts';

/** Runs `sbc-ami ARGS`; returns the exit code and what it printed. */
async function sbcAmi(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...line) => {
    out.push(line.join(' '));
  });
  vi.spyOn(console, 'error').mockImplementation((...line) => {
    err.push(line.join(' '));
  });
  const code = await main(['node', 'sbc-ami', ...args]);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let dir: string;

beforeAll(async () => {
  dir = await tempDir('cli');
});

afterAll(async () => {
  await removeDir(dir);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('sbc-ami validate-profile', () => {
  it('exits 0 with a one-line summary for a valid profile', async () => {
    // Act
    const { code, out } = await sbcAmi('validate-profile', EXAMPLE_PROFILE);

    // Assess
    expect(code).toBe(0);
    expect(out.split('\n')).toHaveLength(1);
    expect(out).toMatch(
      /^valid: profile genesys-byoc-example, SBC sbc\.example\.com, .*1 carrier.*SSH closed \(sha256 [0-9a-f]{64}\)$/,
    );
  });

  it('prints the verdict and the digest as JSON with --json', async () => {
    // Act
    const { code, out } = await sbcAmi(
      'validate-profile',
      PROFILE_FILES['ipv6-peers'],
      '--json',
    );

    // Assess
    expect(code).toBe(0);
    const verdict = JSON.parse(out);
    expect(verdict).toMatchObject({
      valid: true,
      name: 'ipv6-peers',
      file: PROFILE_FILES['ipv6-peers'],
    });
    expect(verdict.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('exits 1 naming every bad field', async () => {
    // Prepare
    const file = join(dir, 'bad.json');
    const profile = JSON.parse(await readFile(EXAMPLE_PROFILE, 'utf8'));
    profile.genesys.signalingPeers[1] = '192.0.2.999';
    profile.rtp.portMax = 100;
    await writeFile(file, JSON.stringify(profile));

    // Act
    const { code, err } = await sbcAmi('validate-profile', file);

    // Assess
    expect(code).toBe(1);
    expect(err).toContain(`${file}: genesys.signalingPeers[1]: not a CIDR`);
    expect(err).toContain(`${file}: rtp.portMax: `);
    expect(err).toContain(`invalid: 3 problem(s) in ${file}`);
  });

  it('lists the errors as JSON with --json', async () => {
    // Prepare
    const file = join(dir, 'typo.json');
    const profile = JSON.parse(await readFile(EXAMPLE_PROFILE, 'utf8'));
    profile.sip.answerOptionsFromStrangers = true;
    await writeFile(file, JSON.stringify(profile));

    // Act
    const { code, out } = await sbcAmi('validate-profile', file, '--json');

    // Assess
    expect(code).toBe(1);
    expect(JSON.parse(out)).toEqual({
      valid: false,
      file,
      errors: [
        { path: 'sip.answerOptionsFromStrangers', message: 'unknown field' },
      ],
    });
  });

  it('exits 2 naming a file it cannot read', async () => {
    // Prepare
    const missing = join(dir, 'nowhere.json');

    // Act
    const { code, err } = await sbcAmi('validate-profile', missing);

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(`cannot read ${missing} (ENOENT)`);
  });

  it('exits 2 without a file argument', async () => {
    // Act
    const { code } = await sbcAmi('validate-profile');

    // Assess
    expect(code).toBe(2);
  });
});

describe('sbc-ami render-config', () => {
  it('writes the tree with the smoke-test sources and lists each file', async () => {
    // Prepare
    const out = join(dir, 'tree');

    // Act
    const result = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      out,
      '--smoke-test-source',
      '198.18.0.1/32',
      '198.18.0.5/32',
    );

    // Assess
    expect(result.code).toBe(0);
    expect(result.out.split('\n')).toContain('0644 etc/kamailio/kamailio.cfg');
    expect(result.out.split('\n')).toHaveLength(12);
    const list = await readFile(join(out, 'etc/kamailio/address.list'), 'utf8');
    expect(list).toContain('3 198.18.0.1 32 0 smoke-test');
    expect(list).toContain('3 198.18.0.5 32 0 smoke-test');
    expect((await stat(join(out, 'etc/nftables.conf'))).mode & 0o777).toBe(
      0o644,
    );
  });

  it('exits 1 and writes nothing for an invalid profile', async () => {
    // Prepare
    const file = join(dir, 'invalid.json');
    await writeFile(file, '{"name": "x"}');
    const out = join(dir, 'never');

    // Act
    const { code, err } = await sbcAmi('render-config', file, '--out', out);

    // Assess
    expect(code).toBe(1);
    expect(err).toContain(`${file}: sbc: required`);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });

  it('exits 2 for a smoke-test source that is not a CIDR', async () => {
    // Act
    const { code, err } = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      join(dir, 'unused'),
      '--smoke-test-source',
      'localhost',
    );

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(
      '--smoke-test-source: smokeTestSources[0]: not a CIDR',
    );
  });

  it('exits 2 without --out', async () => {
    // Act
    const { code } = await sbcAmi('render-config', EXAMPLE_PROFILE);

    // Assess
    expect(code).toBe(2);
  });
});
