import { z } from 'zod';
import { csv, intText, readConfig } from '../config.ts';
import { DEBIAN_12_NAME_PATTERN, DEBIAN_OWNER_ID } from '../constants.ts';

/**
 * The pipeline's policy knobs: which base images are allowed, how long each
 * wait loop may last and how often it looks, what the smoke test demands.
 * The same settings drive AWS and local mode; only the values differ.
 */
export interface PipelineSettings {
  readonly baseImage: {
    /** Owners a base image may come from; the first is searched. */
    readonly allowedOwners: readonly string[];
    /** Name patterns (`*` glob) a base image may match; the first is searched. */
    readonly allowedNames: readonly string[];
  };
  readonly build: WaitSettings & {
    /** The first look comes later: Packer needs minutes before anything can end. */
    readonly firstWaitSeconds: number;
    /** Builds started again after an infrastructure fault, at most. */
    readonly maxStarts: number;
  };
  readonly image: WaitSettings & {
    /** A new id may be invisible to DescribeImages for this long. */
    readonly visibilityGraceSeconds: number;
    readonly requireEncryption: boolean;
    readonly requireImdsV2: boolean;
  };
  readonly instance: WaitSettings;
  readonly smoke: {
    readonly minDays: number;
    readonly timeoutMs: number;
    /** `PORT/PROTO` entries that must not answer on the test host. */
    readonly closedPorts: readonly string[];
  };
}

export interface WaitSettings {
  readonly waitSeconds: number;
  readonly deadlineMinutes: number;
}

const SettingsEnv = z.object({
  ALLOWED_BASE_IMAGE_OWNERS: csv.default([DEBIAN_OWNER_ID]),
  ALLOWED_BASE_IMAGE_NAMES: csv.default([DEBIAN_12_NAME_PATTERN]),
  BUILD_FIRST_WAIT_SECONDS: intText.min(1).default(300),
  BUILD_WAIT_SECONDS: intText.min(1).default(120),
  BUILD_DEADLINE_MINUTES: intText.min(1).default(120),
  BUILD_MAX_STARTS: intText.min(1).max(5).default(3),
  IMAGE_WAIT_SECONDS: intText.min(1).default(60),
  IMAGE_DEADLINE_MINUTES: intText.min(1).default(60),
  IMAGE_VISIBILITY_GRACE_SECONDS: intText.min(0).default(300),
  INSTANCE_WAIT_SECONDS: intText.min(1).default(20),
  INSTANCE_DEADLINE_MINUTES: intText.min(1).default(15),
  SMOKE_MIN_DAYS: intText.min(0).default(14),
  SMOKE_TIMEOUT_MS: intText.min(100).default(3000),
  SMOKE_CLOSED_PORTS: csv.default(['22/tcp', '2223/udp']),
});

/** Settings from the environment, every variable optional with a default. */
export function settingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): PipelineSettings {
  const config = readConfig(SettingsEnv, env);
  return {
    baseImage: {
      allowedOwners: config.ALLOWED_BASE_IMAGE_OWNERS,
      allowedNames: config.ALLOWED_BASE_IMAGE_NAMES,
    },
    build: {
      firstWaitSeconds: config.BUILD_FIRST_WAIT_SECONDS,
      waitSeconds: config.BUILD_WAIT_SECONDS,
      deadlineMinutes: config.BUILD_DEADLINE_MINUTES,
      maxStarts: config.BUILD_MAX_STARTS,
    },
    image: {
      waitSeconds: config.IMAGE_WAIT_SECONDS,
      deadlineMinutes: config.IMAGE_DEADLINE_MINUTES,
      visibilityGraceSeconds: config.IMAGE_VISIBILITY_GRACE_SECONDS,
      requireEncryption: true,
      requireImdsV2: true,
    },
    instance: {
      waitSeconds: config.INSTANCE_WAIT_SECONDS,
      deadlineMinutes: config.INSTANCE_DEADLINE_MINUTES,
    },
    smoke: {
      minDays: config.SMOKE_MIN_DAYS,
      timeoutMs: config.SMOKE_TIMEOUT_MS,
      closedPorts: config.SMOKE_CLOSED_PORTS,
    },
  };
}
