import { performance } from 'node:perf_hooks';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/exit.ts';
import {
  AWS_TIMEOUT_VARIABLE,
  AwsCallError,
  awsCallLimits,
  awsClient,
  explainAwsError,
} from '../../cli/lib/aws.ts';
import { SigningError } from '../../functions/lib/errors.ts';
import { STATE_MACHINE_ARN, sfnError } from './fixtures.ts';
import {
  awsEnv,
  refusedUrl,
  type SilentServer,
  sbcAmi,
  scratch,
  silentServer,
} from './processes.ts';

/** One attempt may take this long in these tests; the SDK makes three. */
const TIMEOUT_SECONDS = 1;
const ATTEMPTS = 3;
/**
 * Start-up of a Node process, backoff between attempts and a busy machine:
 * generous, since what is checked is an end within seconds rather than the
 * SDK's 15-minute socket default. Below the kill timer of `sbcAmi`.
 */
const SLACK_MS = 15_000;
const BOUND_MS = ATTEMPTS * TIMEOUT_SECONDS * 1000 + SLACK_MS;

const NAME = 'genesys-euw1-s3-5d41402abc4b2a76';
const EXECUTION_ARN = STATE_MACHINE_ARN.replace(
  ':stateMachine:',
  ':execution:',
).concat(`:${NAME}`);

function credentialsError(): Error {
  return Object.assign(
    new Error('Could not load credentials from any providers'),
    { name: 'CredentialsProviderError' },
  );
}

describe('awsCallLimits', () => {
  it('bounds each attempt to 30 s, connecting to 5 s, over 3 attempts by default', () => {
    expect(awsCallLimits({})).toEqual({
      connectionTimeoutMs: 5_000,
      requestTimeoutMs: 30_000,
      maxAttempts: 3,
    });
  });

  it('takes the attempt bound from the variable', () => {
    expect(awsCallLimits({ [AWS_TIMEOUT_VARIABLE]: '2' })).toEqual({
      connectionTimeoutMs: 2_000,
      requestTimeoutMs: 2_000,
      maxAttempts: 3,
    });
  });

  it.each(['0', '-1', '1.5', 'soon', '601'])(
    'is a usage error naming the variable when it is %j',
    (value) => {
      expect(() => awsCallLimits({ [AWS_TIMEOUT_VARIABLE]: value })).toThrow(
        UsageError,
      );
      expect(() => awsCallLimits({ [AWS_TIMEOUT_VARIABLE]: value })).toThrow(
        `${AWS_TIMEOUT_VARIABLE}: "${value}" must be a whole number of seconds`,
      );
    },
  );
});

describe('awsClient', () => {
  const env = { [AWS_TIMEOUT_VARIABLE]: String(TIMEOUT_SECONDS) };
  const config = (server: SilentServer) => ({
    region: 'eu-west-1',
    endpoint: server.url,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });

  // The clients of `sbc-ami verify`: KMS for the key, EC2 for the image,
  // S3 for the attestation.
  it.concurrent.each([
    [
      'kms:GetPublicKey',
      (server: SilentServer) =>
        awsClient(KMSClient, config(server), env).send(
          new GetPublicKeyCommand({ KeyId: 'alias/sbc-ami' }),
        ),
    ],
    [
      'ec2:DescribeImages',
      (server: SilentServer) =>
        awsClient(EC2Client, config(server), env).send(
          new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] }),
        ),
    ],
    [
      's3:GetObject',
      (server: SilentServer) =>
        awsClient(
          S3Client,
          { ...config(server), forcePathStyle: true },
          env,
        ).send(
          new GetObjectCommand({ Bucket: 'attestations', Key: 'ami.json' }),
        ),
    ],
  ])(
    'ends %s to an endpoint that never answers, naming the call',
    async (call, send) => {
      // Prepare
      const server = await silentServer();

      try {
        // Act
        const started = performance.now();
        const error = await send(server).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        const elapsedMs = performance.now() - started;

        // Assess
        const explained = explainAwsError(error);
        expect(explained).toBeInstanceOf(AwsCallError);
        expect(explained?.message).toBe(
          `${call}: no answer from ${server.url} within 1 s per attempt, ` +
            `3 attempts (TimeoutError; ${AWS_TIMEOUT_VARIABLE} sets the limit)`,
        );
        expect(server.connections()).toBe(ATTEMPTS);
        expect(elapsedMs).toBeLessThan(BOUND_MS);
      } finally {
        await server.close();
      }
    },
  );

  it('names the call that found no credentials', async () => {
    // Prepare
    const server = await silentServer();
    const client = awsClient(
      KMSClient,
      {
        ...config(server),
        credentials: () => Promise.reject(credentialsError()),
      },
      env,
    );

    try {
      // Act
      const error = await client
        .send(new GetPublicKeyCommand({ KeyId: 'alias/sbc-ami' }))
        .catch((caught: unknown) => caught);

      // Assess
      const explained = explainAwsError(error);
      expect(explained).toBeInstanceOf(UsageError);
      expect(explained?.message).toMatch(
        /^no AWS credentials for kms:GetPublicKey: set AWS_PROFILE/,
      );
      expect(server.connections()).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('explainAwsError', () => {
  it.each([
    [
      'a missing region',
      new Error('Region is missing'),
      'no AWS region is configured: pass --region REGION or set AWS_REGION',
    ],
    [
      'missing credentials',
      credentialsError(),
      'no AWS credentials: set AWS_PROFILE',
    ],
    [
      'missing credentials behind a signing error (verify --kms-key-id)',
      new SigningError('cannot read the public key', {
        cause: credentialsError(),
      }),
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    ],
    [
      'credentials AWS does not know',
      sfnError('UnrecognizedClientException', 'The security token is invalid'),
      'AWS rejected the credentials',
    ],
  ])('makes %s a usage error saying what to set', (_, error, words) => {
    // Act
    const explained = explainAwsError(error);

    // Assess
    expect(explained).toBeInstanceOf(UsageError);
    expect(explained?.message).toContain(words);
  });

  it('names the source of a state machine that does not exist', () => {
    // Act
    const explained = explainAwsError(
      sfnError('StateMachineDoesNotExist', 'State Machine Does Not Exist'),
      `SBC_AMI_STATE_MACHINE_ARN=${STATE_MACHINE_ARN}`,
    );

    // Assess
    expect(explained).toBeInstanceOf(UsageError);
    expect(explained?.message).toBe(
      `SBC_AMI_STATE_MACHINE_ARN=${STATE_MACHINE_ARN}: no such state ` +
        'machine (StateMachineDoesNotExist: State Machine Does Not Exist)',
    );
  });

  it('makes a network error a failure saying what happened', () => {
    // Prepare
    const refused = Object.assign(new Error('connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
      $metadata: { attempts: 3 },
    });

    // Act
    const explained = explainAwsError(refused);

    // Assess
    expect(explained).toBeInstanceOf(AwsCallError);
    expect(explained?.message).toBe(
      'an AWS call: cannot reach AWS: connection refused (ECONNREFUSED), ' +
        '3 attempts',
    );
  });

  it('leaves an error that did not come from AWS alone', () => {
    expect(explainAwsError(new Error('disk full'))).toBeUndefined();
  });
});

describe('sbc-ami against an AWS endpoint that never answers', () => {
  let home: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    home = await scratch('aws-home');
  });
  afterAll(async () => {
    await home.remove();
  });

  // One at a time: concurrent Node start-ups on a small machine take seconds.
  it.each([
    [
      'status',
      ['status', '--state-machine', STATE_MACHINE_ARN],
      'states:ListExecutions',
    ],
    ['status EXECUTION', ['status', EXECUTION_ARN], 'states:DescribeExecution'],
    ['rerun', ['rerun', EXECUTION_ARN], 'states:DescribeExecution'],
    [
      'run',
      [
        'run',
        'profiles/genesys-euw1.json',
        '--bucket',
        'sbc-ami-config-prod',
        '--state-machine',
        STATE_MACHINE_ARN,
      ],
      'states:StartExecution',
    ],
    [
      'cleanup',
      ['cleanup', '--project', 'sbc-ami-build'],
      /(ec2|autoscaling|ssm|codebuild):[A-Za-z]+/,
    ],
  ])(
    '%s ends with exit 1 naming %s within the bound',
    async (_, args, call) => {
      // Prepare
      const server = await silentServer();

      try {
        // Act
        const result = await sbcAmi(
          args,
          awsEnv(home.dir, {
            AWS_ENDPOINT_URL: server.url,
            [AWS_TIMEOUT_VARIABLE]: String(TIMEOUT_SECONDS),
          }),
        );

        // Assess
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(call);
        expect(result.stderr).toContain(
          `no answer from ${server.url} within 1 s per attempt, 3 attempts`,
        );
        expect(server.connections()).toBeGreaterThanOrEqual(ATTEMPTS);
        expect(result.elapsedMs).toBeLessThan(BOUND_MS);
      } finally {
        await server.close();
      }
    },
  );
});

describe('sbc-ami with an AWS configuration it cannot use', () => {
  let home: Awaited<ReturnType<typeof scratch>>;
  let refused: string;
  beforeAll(async () => {
    home = await scratch('aws-config');
    refused = await refusedUrl();
  });
  afterAll(async () => {
    await home.remove();
  });

  it.each([
    ['status', ['status', EXECUTION_ARN], 'states:DescribeExecution'],
    ['rerun', ['rerun', EXECUTION_ARN], 'states:DescribeExecution'],
  ])(
    '%s exits 1 naming %s when the endpoint refuses connections',
    async (_, args, call) => {
      // Act
      const result = await sbcAmi(
        args,
        awsEnv(home.dir, { AWS_ENDPOINT_URL: refused }),
      );

      // Assess
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `sbc-ami: ${call}: cannot reach AWS to ${refused}: connection ` +
          'refused (ECONNREFUSED), 3 attempts',
      );
    },
  );

  it('exits 2 naming --region when cleanup has no region', async () => {
    // Act
    const result = await sbcAmi(
      ['cleanup', '--project', 'sbc-ami-build'],
      awsEnv(home.dir, { AWS_REGION: undefined, AWS_ENDPOINT_URL: refused }),
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      'sbc-ami: no AWS region is configured: pass --region REGION or set ' +
        'AWS_REGION (or a region in the AWS profile)',
    );
  });

  it('exits 2 saying what to set when cleanup finds no credentials', async () => {
    // Act
    const result = await sbcAmi(
      ['cleanup', '--project', 'sbc-ami-build'],
      awsEnv(home.dir, {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_ENDPOINT_URL: refused,
      }),
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /sbc-ami: no AWS credentials for (ec2|autoscaling|ssm|codebuild):\w+: set AWS_PROFILE/,
    );
    expect(result.stderr).not.toContain('sbc-ami: CredentialsProviderError');
  });

  it('prints the failure as JSON with --json, exit code unchanged', async () => {
    // Act
    const result = await sbcAmi(
      ['status', EXECUTION_ARN, '--json'],
      awsEnv(home.dir, { AWS_ENDPOINT_URL: refused }),
    );

    // Assess
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      ok: false,
      error: {
        code: 'failed',
        message: expect.stringMatching(
          /^states:DescribeExecution: cannot reach AWS to .*ECONNREFUSED/,
        ),
      },
    });
    expect(result.stderr).toBe('');
  });

  it('exits 2 naming the variable when the AWS time limit is malformed', async () => {
    // Act
    const result = await sbcAmi(
      ['status', EXECUTION_ARN],
      awsEnv(home.dir, {
        AWS_ENDPOINT_URL: refused,
        [AWS_TIMEOUT_VARIABLE]: 'soon',
      }),
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${AWS_TIMEOUT_VARIABLE}: "soon"`);
  });
});
