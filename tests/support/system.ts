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

/**
 * A `describe` for tests that need root or system packages. When something
 * is missing it says what and skips, or fails under `.ci/run`.
 */
export function describeWithSystem(
  name: string,
  needs: SystemNeeds,
  body: () => void,
): void {
  const missing = missingRequirements(needs);
  if (missing.length === 0) {
    describe(name, body);
    return;
  }

  const reason = `needs ${missing.join(', ')}`;
  if (process.env[REQUIRE_SYSTEM_ENV] === '1') {
    describe(name, () => {
      it('has the system tools it needs', () => {
        throw new Error(`${name} cannot run: ${reason}`);
      });
    });
    return;
  }

  console.warn(`skipping "${name}": ${reason}`);
  describe.skip(`${name} (skipped: ${reason})`, body);
}
