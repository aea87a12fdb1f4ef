import { describe, it } from 'vitest';
import {
  missingRequirements,
  type SystemTool,
} from '../../functions/lib/system/tools.ts';

/**
 * Set by `.ci/run`: a suite that cannot run for lack of root or a system
 * package fails instead of being skipped, so CI always runs every suite.
 */
export const REQUIRE_SYSTEM_ENV = 'SBC_AMI_REQUIRE_SYSTEM';

export interface SystemNeeds {
  root?: boolean;
  tools?: readonly SystemTool[];
}

/** What a suite does on this machine: run, skip (saying why), or fail. */
export type SuiteVerdict =
  | { readonly action: 'run' }
  | { readonly action: 'skip' | 'fail'; readonly reason: string };

/** The verdict for a suite's needs under an environment. */
export function suiteVerdict(
  needs: SystemNeeds,
  env: NodeJS.ProcessEnv = process.env,
): SuiteVerdict {
  const missing = missingRequirements(needs);
  if (missing.length === 0) {
    return { action: 'run' };
  }
  const reason = `needs ${missing.join(', ')}`;
  return { action: env[REQUIRE_SYSTEM_ENV] === '1' ? 'fail' : 'skip', reason };
}

/**
 * A `describe` for tests that need root or system packages. When something
 * is missing it says what and skips, or fails under `.ci/run`.
 */
export function describeWithSystem(
  name: string,
  needs: SystemNeeds,
  body: () => void,
): void {
  const verdict = suiteVerdict(needs);
  if (verdict.action === 'run') {
    describe(name, body);
    return;
  }

  if (verdict.action === 'fail') {
    describe(name, () => {
      it('has the system tools it needs', () => {
        throw new Error(`${name} cannot run: ${verdict.reason}`);
      });
    });
    return;
  }

  console.warn(`skipping "${name}": ${verdict.reason}`);
  describe.skip(`${name} (skipped: ${verdict.reason})`, body);
}
