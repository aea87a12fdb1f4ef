/**
 * The ports of the pipeline bound to local mode's adapters, for one run:
 * the `PipelineDeps` the same Task handlers take on AWS.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { profileFacts } from '../../prepare.ts';
import type { PipelineDeps } from '../../tasks.ts';
import {
  LOCAL_REGION,
  LocalAttestationStore,
  LocalKeySigner,
  localKeyFiles,
} from '../attest/index.ts';
import type { PipelineSettings } from '../pipeline/settings.ts';
import { settingsFromEnv } from '../pipeline/settings.ts';
import {
  type ProbeOptions,
  type ProbeReport,
  runProbe,
} from '../probe/index.ts';
import {
  localCleanupDeps,
  policyFromEnv,
  type RetentionPolicy,
} from '../retention/index.ts';
import type { SystemTool } from '../system/tools.ts';
import { TOOLS } from '../system/tools.ts';
import { LOCAL_BASE_NAME_PATTERN, LOCAL_BASE_OWNER } from './base-image.ts';
import { LocalBuildRunner } from './build-runner.ts';
import { LocalImageStore } from './image-store.ts';
import { LocalNotifier } from './notifier.ts';
import { LocalProfileSource } from './profile-source.ts';
import { LocalRegistryPublisher } from './publisher.ts';
import { type LocalRun, testHostCaFile } from './run-context.ts';
import { LocalLeftoverSweeper } from './sweeper.ts';
import { LocalTestHostRunner } from './test-host.ts';

/** The project's root: the git checkout whose commit tags each image. */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

/**
 * What local mode runs on this machine, with the Debian package of each.
 * Kamailio and rtpengine are not among them: they run from the image.
 */
export const LOCAL_MODE_TOOLS: readonly SystemTool[] = [
  TOOLS.debootstrap,
  TOOLS.chroot,
  TOOLS.mount,
  TOOLS.tar,
  TOOLS.ip,
  TOOLS.nft,
  TOOLS.openssl,
  { command: 'unshare', debianPackage: 'util-linux' },
  { command: 'git', debianPackage: 'git' },
];

/**
 * The pipeline's settings for this machine: the local debootstrap base is
 * the allowed base image; the image is a plain tar file, so neither
 * encryption nor IMDSv2 apply to it; waits are short. The smoke test's
 * demands stay those of AWS (SMOKE_* variables).
 */
export function localSettings(
  env: NodeJS.ProcessEnv = process.env,
): PipelineSettings {
  const aws = settingsFromEnv(env);
  return {
    baseImage: {
      allowedOwners: [LOCAL_BASE_OWNER],
      allowedNames: [LOCAL_BASE_NAME_PATTERN],
    },
    build: {
      firstWaitSeconds: 1,
      waitSeconds: 1,
      deadlineMinutes: 45,
      maxStarts: 1,
    },
    image: {
      waitSeconds: 1,
      deadlineMinutes: 5,
      visibilityGraceSeconds: 30,
      requireEncryption: false,
      requireImdsV2: false,
    },
    instance: { waitSeconds: 1, deadlineMinutes: 3 },
    smoke: aws.smoke,
  };
}

/**
 * The retention policy of local mode: the RETENTION_* variables, with a
 * grace window of one hour unless RETENTION_GRACE_HOURS says otherwise. A
 * local image is a few hundred MB, and a run still building is protected
 * by its work folder anyway.
 *
 * Everything that plans retention for the local home uses this one policy:
 * the CleanupOrphans step of `sbc-ami local` and `sbc-ami cleanup --local`
 * alike, so a dry run shows what the pipeline itself would delete. (AWS
 * keeps `policyFromEnv` and its 24-hour default.)
 */
export function localPolicy(
  env: NodeJS.ProcessEnv = process.env,
): RetentionPolicy {
  const policy = policyFromEnv(env);
  const graceSet = (env.RETENTION_GRACE_HOURS ?? '').trim() !== '';
  return graceSet ? policy : { ...policy, graceHours: 1 };
}

export interface LocalAdapters {
  readonly deps: PipelineDeps;
  readonly images: LocalImageStore;
  readonly builds: LocalBuildRunner;
  readonly hosts: LocalTestHostRunner;
  readonly publisher: LocalRegistryPublisher;
  readonly notifier: LocalNotifier;
  readonly sweeper: LocalLeftoverSweeper;
  readonly signer: LocalKeySigner;
  /** Every smoke-test report of the run, in order, failed ones included. */
  readonly probeReports: ProbeReport[];
}

export interface LocalAdapterOptions {
  /** The pipeline's commit, a full git commit id. */
  readonly sourceRevision: string;
  /** The checkout has changes that commit does not hold (false if not given). */
  readonly sourceDirty?: boolean;
  /** Days the test host's throwaway certificate is valid. */
  readonly certificateDays: number;
  readonly settings?: PipelineSettings;
  readonly policy?: RetentionPolicy;
  /** Where the notifier writes for a person, besides its file. */
  readonly notify?: (message: string) => void;
  readonly reservationsDir?: string;
  /** How long a build check waits for news (see LocalBuildRunner). */
  readonly buildPollMs?: number;
}

export async function createLocalAdapters(
  run: LocalRun,
  options: LocalAdapterOptions,
): Promise<LocalAdapters> {
  const { paths } = run;
  const images = new LocalImageStore(paths);
  const publisher = new LocalRegistryPublisher(paths.registry, {
    signal: run.signal,
  });
  const notifier = new LocalNotifier(
    join(run.recordDir, 'notification.txt'),
    options.notify,
  );
  const sweeper = new LocalLeftoverSweeper(paths, options.reservationsDir);
  const signer = await LocalKeySigner.open(localKeyFiles(paths).privateKey);
  const builds = new LocalBuildRunner(run, {
    store: images,
    sourceRevision: options.sourceRevision,
    sourceDirty: options.sourceDirty ?? false,
    pollMs: options.buildPollMs,
  });
  const hosts = new LocalTestHostRunner(run, {
    store: images,
    certificateDays: options.certificateDays,
  });
  const probeReports: ProbeReport[] = [];
  const probe = async (probeOptions: ProbeOptions) => {
    const report = await runProbe(probeOptions);
    probeReports.push(report);
    return report;
  };

  const deps: PipelineDeps = {
    settings: options.settings ?? localSettings(),
    now: () => new Date(),
    profiles: new LocalProfileSource(),
    parseProfile: profileFacts,
    images,
    builds,
    hosts,
    probe,
    caFile: testHostCaFile(run.workDir),
    signer,
    attestations: new LocalAttestationStore(paths),
    region: LOCAL_REGION,
    builderVersion: packageVersion(),
    contents: (image) => images.hashContents(image),
    publisher,
    notifier,
    sweeper,
    cleanup: localCleanupDeps({ paths, publisher }),
    policy: options.policy ?? localPolicy(),
  };
  return {
    deps,
    images,
    builds,
    hosts,
    publisher,
    notifier,
    sweeper,
    signer,
    probeReports,
  };
}

/** This pipeline's version, named as the builder in the provenance. */
export function packageVersion(): string {
  const text = readFileSync(join(REPO_ROOT, 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
