import {
  mkdir,
  readdir,
  readFile,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
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
import { BIN, runProgram } from '../cli/processes.ts';
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
    expect(err).toContain('--smoke-test-source "localhost": not a CIDR');
    expect(err).not.toContain('smokeTestSources');
  });

  it('exits 2 without --out', async () => {
    // Act
    const { code } = await sbcAmi('render-config', EXAMPLE_PROFILE);

    // Assess
    expect(code).toBe(2);
  });

  it('prints the files written as JSON with --json', async () => {
    // Prepare
    const out = join(dir, 'json-tree');

    // Act
    const result = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      out,
      '--json',
    );

    // Assess
    expect(result.code).toBe(0);
    const written = JSON.parse(result.out);
    expect(written).toMatchObject({ ok: true, file: EXAMPLE_PROFILE, out });
    expect(written.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(written.files).toHaveLength(12);
    expect(written.files).toContainEqual({
      path: 'etc/nftables.conf',
      mode: '0644',
    });
    expect(result.err).toBe('');
  });

  it('lists the errors as JSON with --json for an invalid profile', async () => {
    // Prepare
    const file = join(dir, 'invalid-json.json');
    await writeFile(file, '{"name": "x"}');

    // Act
    const result = await sbcAmi(
      'render-config',
      file,
      '--out',
      join(dir, 'never-json'),
      '--json',
    );

    // Assess
    expect(result.code).toBe(1);
    const verdict = JSON.parse(result.out);
    expect(verdict).toMatchObject({ ok: false, file });
    expect(verdict.errors).toContainEqual({ path: 'sbc', message: 'required' });
  });
});

describe('sbc-ami render-config --out', () => {
  it('exits 2 for an empty --out and writes nothing where it runs', async () => {
    // Prepare
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);

    // Act
    const result = await runProgram(
      process.execPath,
      [BIN, 'render-config', EXAMPLE_PROFILE, '--out', ''],
      { env: { PATH: process.env.PATH }, cwd },
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--out must name the directory');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('exits 2 for an --out that resolves to the filesystem root', async () => {
    // Prepare: as nobody, so that a render into / could never land.
    const command = [BIN, 'render-config', EXAMPLE_PROFILE, '--out', '/tmp/..'];
    const asNobody =
      process.getuid?.() === 0
        ? ([
            'runuser',
            ['-u', 'nobody', '--', process.execPath, ...command],
          ] as const)
        : ([process.execPath, command] as const);

    // Act
    const result = await runProgram(asNobody[0], asNobody[1], {
      env: { PATH: process.env.PATH },
      cwd: '/',
    });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      '--out /tmp/.. is the filesystem root: the tree would overwrite ' +
        "this machine's /etc",
    );
  });

  it('exits 2 naming --out when it is a file, and leaves the file alone', async () => {
    // Prepare
    const file = join(dir, 'a-file');
    await writeFile(file, 'keep me\n');

    // Act
    const { code, err } = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      file,
    );

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(`--out ${file} is a file, not a directory`);
    expect(await readFile(file, 'utf8')).toBe('keep me\n');
  });

  it('exits 2 naming --out when a part of its path is a file', async () => {
    // Prepare
    const file = join(dir, 'a-parent-file');
    await writeFile(file, '');

    // Act
    const { code, err } = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      join(file, 'tree'),
    );

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(
      `--out ${join(file, 'tree')}: a part of the path is a file`,
    );
    expect(err).not.toContain('sbc-ami: Error');
  });

  it('exits 2 for a directory holding anything it does not write', async () => {
    // Prepare
    const out = join(dir, 'host-like');
    await mkdir(join(out, 'etc'), { recursive: true });
    await writeFile(join(out, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');

    // Act
    const { code, err } = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      out,
    );

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(
      `--out ${out} holds etc/passwd, which render-config does not write`,
    );
    expect(await readdir(join(out, 'etc'))).toEqual(['passwd']);
  });

  it('refuses a previous render with a symbolic link, writing nothing through it', async () => {
    // Prepare
    const out = join(dir, 'linked');
    const outside = join(dir, 'outside.conf');
    await writeFile(outside, 'outside\n');
    await mkdir(join(out, 'etc'), { recursive: true });
    await symlink(outside, join(out, 'etc', 'nftables.conf'));

    // Act
    const { code, err } = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      out,
    );

    // Assess
    expect(code).toBe(2);
    expect(err).toContain(`--out ${out} holds etc/nftables.conf`);
    expect(await readFile(outside, 'utf8')).toBe('outside\n');
  });

  it('renders again over a previous render and an empty directory', async () => {
    // Prepare
    const previous = join(dir, 'previous');
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(
      (await sbcAmi('render-config', EXAMPLE_PROFILE, '--out', previous)).code,
    ).toBe(0);
    await writeFile(join(previous, 'etc', 'nftables.conf'), 'stale\n');

    // Act
    const again = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      previous,
    );
    const fresh = await sbcAmi(
      'render-config',
      EXAMPLE_PROFILE,
      '--out',
      empty,
    );

    // Assess
    expect(again.code).toBe(0);
    expect(fresh.code).toBe(0);
    const rendered = await readFile(
      join(previous, 'etc/nftables.conf'),
      'utf8',
    );
    expect(rendered).not.toBe('stale\n');
    expect(rendered).toBe(
      await readFile(join(empty, 'etc/nftables.conf'), 'utf8'),
    );
  });
});
