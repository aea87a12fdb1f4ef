import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'sbc-ami.js');

/** Runs `sbc-ami` as a user would, with no pipeline configuration set. */
async function sbcAmi(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [BIN, ...args],
      { env },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('bin/sbc-ami.js', () => {
  it.each([
    [['run', 'profiles/genesys-euw1.json'], 'SBC_AMI_STATE_MACHINE_ARN'],
    [['status'], 'SBC_AMI_STATE_MACHINE_ARN'],
    [
      ['rerun', 'genesys-euw1-s3-5d41402abc4b2a76'],
      'SBC_AMI_STATE_MACHINE_ARN',
    ],
  ])('exits 2 for %j naming %s when it is unset', async (args, variable) => {
    const result = await sbcAmi(...args);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(variable);
  });

  it('documents the variables and their precedence in the help', async () => {
    const result = await sbcAmi('run', '--help');

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('a flag wins over its variable');
    expect(result.stdout).toContain('SBC_AMI_CONFIG_BUCKET');
  });
});
