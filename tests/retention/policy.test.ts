import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../functions/lib/errors.ts';
import {
  DEFAULT_POLICY,
  policyFromEnv,
  RetentionPolicyError,
  retentionPolicy,
} from '../../functions/lib/retention/index.ts';

describe('retentionPolicy', () => {
  it('names the field that is out of range', () => {
    expect(() => retentionPolicy({ graceHours: -1 })).toThrow(
      /invalid retention policy: graceHours/,
    );
  });

  it('rejects a count that is not whole', () => {
    expect(() => retentionPolicy({ maxDeletes: 2.5 })).toThrow(
      RetentionPolicyError,
    );
  });
});

describe('policyFromEnv', () => {
  it('overrides the defaults with the variables that are set', () => {
    // Act
    const policy = policyFromEnv({
      RETENTION_MAX_DELETES: '7',
      RETENTION_GRACE_HOURS: '1.5',
    });

    // Assess
    expect(policy).toEqual({
      ...DEFAULT_POLICY,
      maxDeletes: 7,
      graceHours: 1.5,
    });
  });

  it('reads a blank variable as unset, not as 0', () => {
    const policy = policyFromEnv({ RETENTION_GRACE_HOURS: ' ' });

    expect(policy.graceHours).toBe(DEFAULT_POLICY.graceHours);
  });

  it('fails with the name of a malformed variable', () => {
    expect(() => policyFromEnv({ RETENTION_KEEP_VALIDATED: 'many' })).toThrow(
      ConfigurationError,
    );
    expect(() => policyFromEnv({ RETENTION_KEEP_VALIDATED: 'many' })).toThrow(
      /RETENTION_KEEP_VALIDATED/,
    );
  });
});
