import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUIRE_SYSTEM_ENV, suiteVerdict } from './system.ts';

const MISSING_TOOL = {
  command: 'sbc-ami-no-such-command',
  debianPackage: 'sbc-ami-no-such-package',
};

describe('suiteVerdict', () => {
  it('runs a suite whose tools are all present', () => {
    const verdict = suiteVerdict(
      { tools: [{ command: 'sh', debianPackage: 'dash' }] },
      { [REQUIRE_SYSTEM_ENV]: '1' },
    );

    expect(verdict).toEqual({ action: 'run' });
  });

  it('skips a suite that lacks a tool, naming its Debian package', () => {
    const verdict = suiteVerdict({ tools: [MISSING_TOOL] }, {});

    expect(verdict).toEqual({
      action: 'skip',
      reason:
        'needs sbc-ami-no-such-command (apt-get install sbc-ami-no-such-package)',
    });
  });

  it('fails instead of skipping under .ci/run', () => {
    const verdict = suiteVerdict(
      { tools: [MISSING_TOOL] },
      { [REQUIRE_SYSTEM_ENV]: '1' },
    );

    expect(verdict.action).toBe('fail');
  });

  it('is told to fail by .ci/run, which sets the variable before the tests', () => {
    const ci = readFileSync(
      join(import.meta.dirname, '..', '..', '.ci', 'run'),
      'utf8',
    );

    const set = ci.indexOf(`export ${REQUIRE_SYSTEM_ENV}=1`);
    expect(set).toBeGreaterThan(0);
    expect(ci.indexOf('npm test', set)).toBeGreaterThan(set);
  });
});
