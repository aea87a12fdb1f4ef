import { createServer } from 'node:net';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import {
  KmsSigner,
  S3AttestationStore,
} from '../../functions/lib/attest/index.ts';
import { CodeBuildRunner } from '../../functions/lib/aws/build-runner.ts';
import { Ec2ImageStore } from '../../functions/lib/aws/image-store.ts';
import { SnsNotifier } from '../../functions/lib/aws/notifier.ts';
import { S3ProfileSource } from '../../functions/lib/aws/profile-source.ts';
import { SsmPublisher } from '../../functions/lib/aws/publisher.ts';
import { Ec2TestHostRunner } from '../../functions/lib/aws/test-host.ts';
import {
  type LocalRunResult,
  runLocalStateMachine,
} from '../../functions/lib/local/state-machine.ts';
import { runIdentity } from '../../functions/lib/pipeline/run-id.ts';
import {
  type PipelineSettings,
  settingsFromEnv,
} from '../../functions/lib/pipeline/settings.ts';
import type {
  ProbeOptions,
  ProbeReport,
} from '../../functions/lib/probe/index.ts';
import {
  awsCleanupDeps,
  DEFAULT_POLICY,
  Ec2LeftoverSweeper,
} from '../../functions/lib/retention/index.ts';
import { profileFacts } from '../../functions/prepare.ts';
import { type PipelineDeps, taskHandlers } from '../../functions/tasks.ts';
import {
  ARTIFACTS_BUCKET,
  KMS_KEY_ID,
  LAUNCH_TEMPLATE_ID,
  PROFILE_BUCKET,
  PROFILE_KEY,
  PROFILE_VERSION,
  PROJECT,
  REGION,
  TOPIC_ARN,
} from './world.ts';

/** A clock that only moves when the run would have waited. */
export class SimulatedClock {
  time: number;

  constructor(start = Date.parse('2026-12-01T00:00:00.000Z')) {
    this.time = start;
  }

  now = (): Date => new Date(this.time);

  advance(seconds: number): void {
    this.time += seconds * 1000;
  }
}

export type Probe = (options: ProbeOptions) => Promise<ProbeReport>;

/** A probe for runs that must fail before the smoke test. */
export const unreachableProbe: Probe = async () => {
  throw new Error('the smoke test was not expected to run');
};

/** The input an S3 upload of the example profile sends. */
export const S3_INPUT = {
  trigger: { source: 's3' },
  profile: {
    bucket: PROFILE_BUCKET,
    key: PROFILE_KEY,
    versionId: PROFILE_VERSION,
  },
} as const;

export interface PipelineRun extends LocalRunResult {
  readonly runId: string;
  readonly executionName: string;
}

/**
 * Runs the real definition file with the real handlers and AWS adapters,
 * AWS played by the client mocks of the `AwsWorld` the test created.
 * Wait states take no time; the simulated clock moves by what each Wait
 * would have waited, as recorded in the poll the check after it receives.
 */
export async function runPipeline(
  options: {
    probe?: Probe;
    settings?: (defaults: PipelineSettings) => PipelineSettings;
    clock?: SimulatedClock;
    input?: unknown;
    /** The launch templates Publish writes (the world's first one). */
    launchTemplateIds?: readonly string[];
  } = {},
): Promise<PipelineRun> {
  const clock = options.clock ?? new SimulatedClock();
  const defaults = settingsFromEnv({});
  const settings = options.settings?.(defaults) ?? defaults;
  const ec2 = new EC2Client({ region: REGION });
  const s3 = new S3Client({ region: REGION });
  const images = new Ec2ImageStore(ec2);

  const deps: PipelineDeps = {
    settings,
    now: clock.now,
    profiles: new S3ProfileSource(s3),
    parseProfile: profileFacts,
    images,
    builds: new CodeBuildRunner(
      new CodeBuildClient({ region: REGION }),
      s3,
      PROJECT,
    ),
    hosts: new Ec2TestHostRunner(ec2, {
      instanceType: 't3.small',
      subnetId: 'subnet-0test0000000000001',
      securityGroupIds: ['sg-0test0000000000001'],
    }),
    probe: options.probe ?? unreachableProbe,
    signer: new KmsSigner(new KMSClient({ region: REGION }), KMS_KEY_ID),
    attestations: new S3AttestationStore(s3, {
      bucket: ARTIFACTS_BUCKET,
      prefix: 'attestations/',
    }),
    region: REGION,
    builderVersion: '0.1.0',
    publisher: new SsmPublisher(new SSMClient({ region: REGION }), ec2, {
      parameterPrefix: '/sbc-ami',
      launchTemplateIds: options.launchTemplateIds ?? [LAUNCH_TEMPLATE_ID],
      setDefaultVersion: true,
      readBackRetries: 1,
      undoDelayMs: 0,
    }),
    notifier: new SnsNotifier(new SNSClient({ region: REGION }), TOPIC_ARN),
    sweeper: new Ec2LeftoverSweeper({ ec2, retryDelayMs: 0 }),
    cleanup: awsCleanupDeps({
      parameterPrefix: '/sbc-ami',
      projectName: PROJECT,
    }),
    policy: DEFAULT_POLICY,
  };

  const input = options.input ?? S3_INPUT;
  const identity = runIdentity(input as typeof S3_INPUT);
  const result = await runLocalStateMachine({
    handlers: taskHandlers(() => deps),
    input,
    executionName: identity.executionName,
    beforeTask: (_fn, taskInput) => {
      const poll = (taskInput as { poll?: { waitSeconds?: number } }).poll;
      if (typeof poll?.waitSeconds === 'number') {
        clock.advance(poll.waitSeconds);
      }
    },
  });
  return { ...result, ...identity };
}

/** A TCP port nothing listens on right now, for the closed-port check. */
export async function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(
          typeof address === 'object' && address !== null ? address.port : 0,
        ),
      );
    });
  });
}
