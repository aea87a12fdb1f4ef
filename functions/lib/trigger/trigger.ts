import { InvalidInputError } from '../errors.ts';
import { parseInput } from '../handler.ts';
import {
  type ExecutionInput,
  ExecutionInputSchema,
  runIdentity,
  type Trigger,
} from '../pipeline/run-id.ts';
import { ScheduledProfileMissingError } from './errors.ts';
import {
  decodeS3Key,
  ignoredKeyReason,
  parseTriggerEvent,
  type S3NotificationRecord,
} from './events.ts';

export interface TriggerSettings {
  /** The config bucket whose profiles start runs. */
  readonly bucket: string;
  /** Profiles are the `.json` keys under this prefix (ends with `/`). */
  readonly prefix: string;
  /** Profiles the schedule rebuilds; empty: every profile under the prefix. */
  readonly scheduledKeys: readonly string[];
}

/** One execution to start; its name is derived from its input. */
export interface PlannedRun {
  readonly name: string;
  readonly input: ExecutionInput;
}

export type StartOutcome =
  | { readonly outcome: 'started'; readonly executionArn?: string }
  | { readonly outcome: 'already-started' };

/** Starts executions of the pipeline's state machine. */
export interface ExecutionStarter {
  /** A name that was started before reports `already-started`. */
  start(run: PlannedRun): Promise<StartOutcome>;
}

export interface ProfileVersion {
  readonly key: string;
  readonly versionId: string;
}

/** The profiles in the config bucket, each at its latest version. */
export interface ProfileCatalog {
  /**
   * The latest version of each key, or of every profile under the prefix
   * when no keys are given. A key that does not exist is reported in
   * `missing`, not thrown, so the other profiles still run.
   */
  latest(
    bucket: string,
    prefix: string,
    keys: readonly string[],
  ): Promise<{ found: ProfileVersion[]; missing: string[] }>;
}

export interface TriggerDeps {
  readonly executions: ExecutionStarter;
  readonly profiles: ProfileCatalog;
  readonly settings: TriggerSettings;
}

export interface RunRef {
  readonly execution: string;
  readonly key: string;
  readonly versionId: string;
}

export interface IgnoredKey {
  readonly key: string;
  readonly reason: string;
}

/** What one event started; small, whatever the number of profiles. */
export interface TriggerReport {
  readonly source: 's3' | 'schedule';
  readonly started: RunRef[];
  readonly alreadyStarted: RunRef[];
  readonly ignored: IgnoredKey[];
}

/**
 * Turns an S3 notification or a schedule fire into pipeline executions.
 * The event is validated whole before anything starts, so a bad record
 * starts nothing. Execution names come from the run identity: a repeated
 * event (or a retry of this function after a partial failure) names the
 * same executions and starts nothing new.
 */
export async function handleTrigger(
  event: unknown,
  deps: TriggerDeps,
): Promise<TriggerReport> {
  const parsed = parseTriggerEvent(event);

  if (parsed.kind === 's3') {
    const plan = planS3Runs(parsed.records, deps.settings);
    const outcome = await startAll(plan.runs, deps.executions);
    return { source: 's3', ...outcome, ignored: plan.ignored };
  }

  const { bucket, prefix, scheduledKeys } = deps.settings;
  const { found, missing } = await deps.profiles.latest(
    bucket,
    prefix,
    scheduledKeys,
  );
  const runs = found.map((profile) =>
    plannedRun({ source: 'schedule', time: parsed.time }, bucket, profile),
  );
  const outcome = await startAll(dedupe(runs), deps.executions);
  if (missing.length > 0) {
    throw new ScheduledProfileMissingError(
      `scheduled profiles not found in s3://${bucket}: ` +
        `${missing.join(', ')} (${outcome.started.length} other runs started)`,
      { data: { missing, started: outcome.started.map((r) => r.execution) } },
    );
  }
  return { source: 'schedule', ...outcome, ignored: [] };
}

/**
 * The runs of an S3 notification's records: object creations of `.json`
 * keys under the prefix in the config bucket. Every other record is
 * ignored with its reason; a profile record without a version id fails
 * the whole event.
 */
export function planS3Runs(
  records: readonly S3NotificationRecord[],
  settings: TriggerSettings,
): { runs: PlannedRun[]; ignored: IgnoredKey[] } {
  const runs: PlannedRun[] = [];
  const ignored: IgnoredKey[] = [];

  records.forEach((record, index) => {
    const field = `Records.${index}.s3.object`;
    const key = decodeS3Key(record.s3.object.key, `${field}.key`);
    const bucket = record.s3.bucket.name;
    const reason = !record.eventName.startsWith('ObjectCreated:')
      ? `a ${record.eventName} event, not an object creation`
      : bucket !== settings.bucket
        ? `in bucket ${bucket}, not the config bucket ${settings.bucket}`
        : ignoredKeyReason(key, settings.prefix);
    if (reason !== undefined) {
      ignored.push({ key, reason });
      return;
    }

    const versionId = record.s3.object.versionId;
    // S3 reports the version of an object written while versioning was
    // suspended as "null": not an identity, two uploads would share it.
    if (versionId === undefined || versionId === 'null') {
      throw new InvalidInputError(
        `invalid event: ${field}.versionId: missing for ${key}; the ` +
          `config bucket ${bucket} must have versioning enabled`,
        { data: { fields: [`${field}.versionId`], key } },
      );
    }
    runs.push(plannedRun({ source: 's3' }, bucket, { key, versionId }));
  });

  return { runs: dedupe(runs), ignored };
}

/** The execution input and name of one profile version. */
export function plannedRun(
  trigger: Trigger,
  bucket: string,
  profile: ProfileVersion,
): PlannedRun {
  const input = parseInput(ExecutionInputSchema, {
    trigger,
    profile: { bucket, key: profile.key, versionId: profile.versionId },
  });
  return { name: runIdentity(input).executionName, input };
}

function dedupe(runs: readonly PlannedRun[]): PlannedRun[] {
  const byName = new Map(runs.map((run) => [run.name, run]));
  return [...byName.values()];
}

async function startAll(
  runs: readonly PlannedRun[],
  executions: ExecutionStarter,
): Promise<{ started: RunRef[]; alreadyStarted: RunRef[] }> {
  const started: RunRef[] = [];
  const alreadyStarted: RunRef[] = [];
  // One at a time: a profile upload starts one run, a schedule fire a few.
  for (const run of runs) {
    const outcome = await executions.start(run);
    const ref = {
      execution: run.name,
      key: run.input.profile.key,
      versionId: run.input.profile.versionId ?? '',
    };
    (outcome.outcome === 'started' ? started : alreadyStarted).push(ref);
  }
  return { started, alreadyStarted };
}
