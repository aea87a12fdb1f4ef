import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { PACKER_DIR } from '../../functions/lib/local/rootfs.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';

const run = promisify(execFile);

/** Every shell script under packer/: by extension or by its shebang. */
async function shellScripts(): Promise<string[]> {
  const entries = await readdir(PACKER_DIR, {
    recursive: true,
    withFileTypes: true,
  });
  const scripts: string[] = [];
  for (const entry of entries.filter((e) => e.isFile())) {
    const path = join(entry.parentPath, entry.name);
    const head = (await readFile(path, 'utf8')).slice(0, 64);
    if (entry.name.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(head)) {
      scripts.push(path);
    }
  }
  return scripts.sort();
}

describeWithSystem('shellcheck', { tools: [TOOLS.shellcheck] }, () => {
  it('finds the provisioning scripts and the boot-time scripts', async () => {
    // Act
    const names = (await shellScripts()).map((path) =>
      relative(PACKER_DIR, path),
    );

    // Assess
    expect(names).toEqual(
      expect.arrayContaining([
        'scripts/10-packages.sh',
        'scripts/20-install-tree.sh',
        'scripts/30-hardening.sh',
        'scripts/40-scrub.sh',
        'scripts/90-validate.sh',
        'files/usr/local/sbin/sbc-first-boot',
        'files/usr/local/sbin/sbc-cert-check',
      ]),
    );
  });

  it('passes every shell script under packer/', async () => {
    // Prepare
    const scripts = await shellScripts();

    // Act: execFile rejects with shellcheck's report on any finding
    const result = await run('shellcheck', ['--severity=style', ...scripts]);

    // Assess
    expect(result.stdout).toBe('');
  });

  it('sets errexit, nounset and pipefail in every script', async () => {
    for (const path of await shellScripts()) {
      // Act
      const text = await readFile(path, 'utf8');

      // Assess
      expect(text, relative(PACKER_DIR, path)).toMatch(/^set -euo pipefail$/m);
    }
  });

  it('reports a finding in a script that breaks a rule', async () => {
    // Prepare: an unquoted variable, which the scripts never have
    const bad = '#!/usr/bin/env bash\nset -euo pipefail\nrm -rf $1/x\n';

    // Act / Assess
    await expect(
      run('bash', ['-c', 'printf %s "$1" | shellcheck -', 'sh', bad]),
    ).rejects.toMatchObject({ stdout: expect.stringContaining('SC2086') });
  });
});
