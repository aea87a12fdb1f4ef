import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, runProgram, scratch } from './processes.ts';

const SETUP = join(REPO, 'scripts', 'setup.sh');

describe('scripts/setup.sh', () => {
  let stubs: Awaited<ReturnType<typeof scratch>>;
  let calls: string;

  /**
   * Stand-ins on PATH for what setup runs: `node` reporting a chosen
   * version, `id` saying root, and `apt-get` and `npm` writing down their
   * arguments instead of installing anything.
   */
  beforeEach(async () => {
    stubs = await scratch('setup-stubs');
    calls = join(stubs.dir, 'calls.log');
    const script = (body: string) => `#!/bin/sh\n${body}\n`;
    const record = script(`echo "$(basename "$0") $*" >>"${calls}"`);
    await writeFile(
      join(stubs.dir, 'node'),
      script(
        '[ -n "$FAKE_NODE_VERSION" ] || exit 127\n' +
          'case "$1" in -p) echo "$FAKE_NODE_VERSION" ;; ' +
          '*) echo "v$FAKE_NODE_VERSION" ;; esac',
      ),
    );
    await writeFile(join(stubs.dir, 'id'), script('echo 0'));
    await writeFile(join(stubs.dir, 'apt-get'), record);
    await writeFile(join(stubs.dir, 'npm'), record);
    for (const name of ['node', 'id', 'apt-get', 'npm']) {
      await chmod(join(stubs.dir, name), 0o755);
    }
  });
  afterEach(async () => {
    await stubs.remove();
  });

  function setup(nodeVersion: string | undefined) {
    return runProgram('/bin/bash', [SETUP], {
      env: {
        PATH: `${stubs.dir}:/usr/bin:/bin`,
        ...(nodeVersion === undefined
          ? {}
          : { FAKE_NODE_VERSION: nodeVersion }),
      },
    });
  }

  const recorded = () => readFile(calls, 'utf8').catch(() => '');

  it.each(['21.9.0', '22.0.0', '22.11.1', '22.12.0', '22.17.1', '23.5.0'])(
    'exits 2 before installing anything with Node.js %s',
    async (version) => {
      // Act
      const result = await setup(version);

      // Assess
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `sbc-ami needs Node.js 22.18 or newer; found ${version}\n`,
      );
      expect(await recorded()).toBe('');
    },
  );

  it('exits 2 saying none was found without Node.js', async () => {
    // Act
    const result = await setup(undefined);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('found none');
    expect(await recorded()).toBe('');
  });

  it.each(['22.18.0', '22.23.5', '23.6.0', '24.0.0'])(
    'installs with Node.js %s',
    async (version) => {
      // Act
      const result = await setup(version);

      // Assess
      expect(result.code).toBe(0);
      const lines = (await recorded()).trim().split('\n');
      expect(lines[0]).toBe('apt-get update -q');
      expect(lines[1]).toMatch(
        /^apt-get install -y -q --no-install-recommends kamailio /,
      );
      expect(lines[2]).toBe('npm ci --no-audit --no-fund');
    },
  );
});

describe('npm run bench', () => {
  it('exits 2 listing the known benchmarks for a name it does not know', async () => {
    // Act
    const result = await runProgram(
      process.execPath,
      [join(REPO, 'bench', 'index.ts'), 'probe', 'nope'],
      { env: { PATH: process.env.PATH } },
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'bench: no benchmark "nope"; known: pipeline, probe, retention, local\n',
    );
    expect(result.stdout).toBe('');
  });
});
