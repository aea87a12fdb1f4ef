import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  CodeBuildRunner,
  MANIFEST_FILE,
  manifestObject,
} from '../../functions/lib/aws/build-runner.ts';
import { MANAGED_BY_VALUE } from '../../functions/lib/constants.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  actionsOf,
  allowed,
  conditionValues,
  grantedActions,
  hasWildcardResource,
  identityStatements,
  isReadOnly,
  reachableActions,
  resourceStrings,
  type Statement,
  statementBySid,
} from './iam.ts';
import {
  type PackagedStack,
  packageStack,
  type Resource,
  ROOT,
  type Template,
} from './package.ts';
import {
  chosen,
  condition,
  env,
  functions,
  placeholders,
  resource,
  resourcesOfType,
  roleOf,
} from './template.ts';

const aslValidator = createRequire(import.meta.url)('asl-validator') as (
  definition: unknown,
) => { isValid: boolean; errors: unknown[] };

const execute = promisify(execFile);

/** The parameters without a default, and optional features turned on. */
const MAIN_PARAMS = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  buildSubnetId: 'subnet-0b11d0000000000aa',
  testSubnetId: 'subnet-0de57000000000bbb',
  sourceRepositoryUrl: 'https://github.com/example/sbc-ami-pipeline.git',
  notificationEmail: 'voice-oncall@example.com',
  launchTemplateIds: 'lt-0123456789abcdef0,lt-0fedcba9876543210',
  sourceConnectionArn:
    'arn:aws:codeconnections:eu-west-1:123456789012:connection/4f9c0d3e-1111-2222-3333-444455556666',
};

/** Every switch the other way. */
const ALTERNATE_PARAMS = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  buildSubnetId: 'subnet-0b11d0000000000aa',
  testSubnetId: 'subnet-0de57000000000bbb',
  smokeTestSubnetIds: 'subnet-05a0000000000000c,subnet-05b0000000000000d',
  sourceRepositoryUrl: 'https://github.com/example/sbc-ami-pipeline.git',
  sourceVersion: '3f2c9e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e',
  scheduleEnabled: 'false',
  scheduleExpression: 'rate(14 days)',
  profilePrefix: 'sip-profiles/',
  logRetentionDays: '14',
  ebsKmsKeyArn:
    'arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9',
};

/** Task names of the definition and the handler file of each. */
const TASK_FILES: Record<string, string> = {
  Prepare: 'prepare',
  StartBuild: 'start-build',
  CheckBuild: 'check-build',
  ResolveImage: 'resolve-image',
  CheckImage: 'check-image',
  LaunchTestInstance: 'launch-test-instance',
  CheckTestInstance: 'check-test-instance',
  SmokeTest: 'smoke-test',
  Sign: 'sign',
  Publish: 'publish',
  TerminateTestInstance: 'terminate-test-instance',
  CleanupOrphans: 'cleanup-orphans',
  Notify: 'notify',
  DiscardImage: 'discard-image',
  SweepBuildLeftovers: 'sweep-build-leftovers',
};

const DEFINITION_FILE = join(ROOT, 'statemachine', 'pipeline.asl.json');

let main: PackagedStack;
let alternate: PackagedStack;

beforeAll(async () => {
  // Both at once; a failed one must not leave the other's copy behind.
  const [first, second] = await Promise.allSettled([
    packageStack(MAIN_PARAMS),
    packageStack(ALTERNATE_PARAMS),
  ]);
  if (first.status === 'fulfilled') {
    main = first.value;
  }
  if (second.status === 'fulfilled') {
    alternate = second.value;
  }
  for (const result of [first, second]) {
    if (result.status === 'rejected') {
      throw result.reason;
    }
  }
});

afterAll(async () => {
  await main?.dispose();
  await alternate?.dispose();
});

// ------------------------------------------------------------------ tests

describe('serverless package', () => {
  it('packages every handler as its own function on nodejs22.x', async () => {
    // Prepare
    const files = await readdir(main.packageDir);
    const expected = [...Object.values(TASK_FILES), 'trigger'];

    // Act
    const handlers = [...functions(main.template)].map(([id, fn]) => {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      const key = id.charAt(0).toLowerCase() + id.slice(1);
      expect(files).toContain(`${key}.zip`);
      expect(fn.Properties.Code.S3Key).toMatch(new RegExp(`/${key}\\.zip$`));
      return fn.Properties.Handler as string;
    });

    // Assess
    expect(handlers.sort()).toEqual(
      expected.map((file) => `functions/${file}.handler`).sort(),
    );
    for (const file of expected) {
      expect(existsSync(join(ROOT, 'functions', `${file}.ts`))).toBe(true);
    }
  });

  it('warns about nothing in the configuration but the runtime', () => {
    // Act: configuration problems are printed as `at '<path>': <problem>`.
    const problems = (stack: PackagedStack) =>
      [...stack.output.matchAll(/^\s*at '([^']+)'/gm)].map((m) => m[1]);

    // Assess
    expect(problems(main)).toEqual(['provider.runtime']);
    expect(problems(alternate)).toEqual(['provider.runtime']);
  });

  it('keeps every log group for the configured number of days', () => {
    // Act
    const retention = (template: Template) =>
      resourcesOfType(template, 'AWS::Logs::LogGroup').map(
        ([, group]) => group.Properties.RetentionInDays,
      );

    // Assess: one per function, plus the build's.
    expect(retention(main.template)).toHaveLength(17);
    // A value given with --param arrives as text; CloudFormation reads both.
    expect(new Set(retention(main.template).map(Number))).toEqual(
      new Set([30]),
    );
    expect(new Set(retention(alternate.template).map(Number))).toEqual(
      new Set([14]),
    );
  });
});

describeWithSystem(
  'bundled handlers',
  { tools: [{ command: 'unzip', debianPackage: 'unzip' }] },
  () => {
    /** Each function's zip and the bundle its handler names. */
    const packaged = () =>
      [...functions(main.template)].map(([id, fn]) => ({
        zip: join(
          main.packageDir,
          `${id.charAt(0).toLowerCase()}${id.slice(1)}.zip`,
        ),
        bundle: (fn.Properties.Handler as string).replace(/\.handler$/, '.mjs'),
      }));

    it('packages each function as its bundle and source map only', async () => {
      // Prepare
      const expected = packaged();

      // Act
      const entries = await Promise.all(
        expected.map(async ({ zip }) => {
          const { stdout } = await execute('unzip', ['-Z1', zip]);
          return stdout.split('\n').filter(Boolean).sort();
        }),
      );

      // Assess: no node_modules, so no copy of the runtime's AWS SDK.
      expect(entries).toHaveLength(16);
      expect(entries).toEqual(
        expected.map(({ bundle }) => [bundle, `${bundle}.map`]),
      );
    });

    it('bundles neither the AWS SDK nor zod locales but English', async () => {
      // Prepare
      const expected = packaged();
      const locale = /(?:^|\/)node_modules\/zod\/v4\/locales\/([^/]+)$/;
      const sdk = /(?:^|\/)node_modules\/(?:@aws-sdk|@smithy)\//;

      // Act: the sources of a bundle's map are the modules it holds.
      const bundled = await Promise.all(
        expected.map(async ({ zip, bundle }) => {
          const { stdout } = await execute(
            'unzip',
            ['-p', zip, `${bundle}.map`],
            { maxBuffer: 16 * 1024 * 1024 },
          );
          const { sources } = JSON.parse(stdout) as { sources: string[] };
          // A plugin's virtual module is `namespace:path`, not a file.
          const files = sources.filter((source) => !/^[\w-]+:/.test(source));
          return {
            bundle,
            handler: files.some((source) =>
              source.endsWith(bundle.replace(/\.mjs$/, '.ts')),
            ),
            sdk: files.filter((source) => sdk.test(source)),
            locales: files.flatMap(
              (source) => locale.exec(source)?.slice(1, 2) ?? [],
            ),
          };
        }),
      );

      // Assess
      expect(bundled).toEqual(
        expected.map(({ bundle }) => ({
          bundle,
          handler: true,
          sdk: [],
          locales: ['en.js'],
        })),
      );
    });

    it('loads every bundle as an ES module exporting its handler', async () => {
      // Prepare
      const out = await mkdtemp(join(tmpdir(), 'sbc-ami-bundles-'));
      try {
        const zips = (await readdir(main.packageDir)).filter((file) =>
          file.endsWith('.zip'),
        );

        // The nodejs22.x runtime provides AWS SDK v3 and nothing else: the
        // repository's copy stands in for it, beside the unzipped folders.
        await mkdir(join(out, 'node_modules'));
        await symlink(
          join(ROOT, 'node_modules', '@aws-sdk'),
          join(out, 'node_modules', '@aws-sdk'),
        );

        // Act: in a plain Node process, as Lambda's runtime loads them.
        const bundles: string[] = [];
        for (const zip of zips) {
          const dir = join(out, zip.replace(/\.zip$/, ''));
          await execute('unzip', ['-q', join(main.packageDir, zip), '-d', dir]);
          const [bundle] = (await readdir(join(dir, 'functions'))).filter(
            (file) => file.endsWith('.mjs'),
          );
          bundles.push(
            pathToFileURL(join(dir, 'functions', bundle ?? '')).href,
          );
        }
        const script =
          'const loaded = {};' +
          'for (const url of JSON.parse(process.argv[1])) {' +
          '  loaded[url] = typeof (await import(url)).handler;' +
          '}' +
          'console.log(JSON.stringify(loaded));';
        const { stdout } = await execute(
          process.execPath,
          ['--input-type=module', '-e', script, JSON.stringify(bundles)],
          { env: { PATH: process.env.PATH } },
        );
        const loaded = JSON.parse(stdout) as Record<string, string>;

        // Assess
        expect(Object.keys(loaded)).toHaveLength(16);
        expect(new Set(Object.values(loaded))).toEqual(new Set(['function']));
      } finally {
        await rm(out, { recursive: true, force: true });
      }
      // Sixteen unzips and imports: room for a slow machine, so the
      // folder is always removed before the test ends.
    }, 120_000);
  },
);

describe('state machine', () => {
  it('deploys the statemachine file unchanged', async () => {
    // Prepare
    const file = JSON.parse(await readFile(DEFINITION_FILE, 'utf8'));

    // Act
    const machine = resource(main.template, 'PipelineStateMachine');

    // Assess
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(JSON.parse(machine.Properties.DefinitionString)).toEqual(file);
  });

  it('binds every placeholder to the function of its Task', async () => {
    // Prepare
    const text = await readFile(DEFINITION_FILE, 'utf8');
    const fns = functions(main.template);

    // Act
    const substitutions = resource(main.template, 'PipelineStateMachine')
      .Properties.DefinitionSubstitutions as Record<string, unknown>;

    // Assess
    expect(Object.keys(substitutions).sort()).toEqual(
      placeholders(text).sort(),
    );
    expect(Object.keys(substitutions)).toHaveLength(15);
    for (const [name, file] of Object.entries(TASK_FILES)) {
      expect(substitutions[`${name}FunctionArn`]).toEqual({
        'Fn::GetAtt': [`${name}LambdaFunction`, 'Arn'],
      });
      expect(fns.get(name)?.Properties.Handler).toBe(
        `functions/${file}.handler`,
      );
    }
  });

  it('is valid ASL once CloudFormation substitutes the ARNs', () => {
    // Prepare
    const machine = resource(main.template, 'PipelineStateMachine');
    const text = (machine.Properties.DefinitionString as string).replace(
      /\$\{(\w+)FunctionArn\}/g,
      'arn:aws:lambda:eu-west-1:123456789012:function:sbc-ami-pipeline-test-$1',
    );

    // Act
    const result = aslValidator(JSON.parse(text));

    // Assess
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('gives each Task function a timeout below its Task timeout', async () => {
    // Prepare
    const definition = JSON.parse(await readFile(DEFINITION_FILE, 'utf8'));
    const fns = functions(main.template);

    // Act
    const tasks = Object.values(definition.States).filter(
      (state) => (state as { Type: string }).Type === 'Task',
    ) as { Resource: string; TimeoutSeconds: number }[];

    // Assess
    expect(tasks.length).toBeGreaterThanOrEqual(15);
    for (const task of tasks) {
      const name = task.Resource.replace(/^\$\{(\w+)FunctionArn\}$/, '$1');
      const timeout = fns.get(name)?.Properties.Timeout as number;
      expect(timeout, name).toBeLessThan(task.TimeoutSeconds);
    }
  });

  it('lets its role invoke exactly the Task functions', () => {
    // Prepare
    const machine = resource(main.template, 'PipelineStateMachine');

    // Act
    const statements = allowed(main.template).filter(
      (item) => item.owner === 'StateMachineRole',
    );

    // Assess
    expect(machine.Properties.RoleArn).toEqual({
      'Fn::GetAtt': ['StateMachineRole', 'Arn'],
    });
    expect(statements.flatMap((item) => actionsOf(item.statement))).toEqual([
      'lambda:InvokeFunction',
    ]);
    expect(
      statements
        .flatMap((item) => resourceStrings(item.statement.Resource))
        .sort(),
    ).toEqual(
      Object.keys(TASK_FILES)
        .map((name) => `${name}LambdaFunction.Arn`)
        .sort(),
    );
  });
});

describe('triggers', () => {
  it.each([
    ['main', () => main, 'profiles/'],
    ['alternate', () => alternate, 'sip-profiles/'],
  ])(
    'sends only new .json objects under the prefix to the trigger (%s)',
    (_, stack, prefix) => {
      // Prepare
      const template = stack().template;
      const bucket = resource(template, 'ConfigBucket');

      // Act
      const notifications = bucket.Properties.NotificationConfiguration;

      // Assess
      expect(Object.keys(notifications)).toEqual(['LambdaConfigurations']);
      expect(notifications.LambdaConfigurations).toEqual([
        {
          Event: 's3:ObjectCreated:*',
          Function: { 'Fn::GetAtt': ['TriggerLambdaFunction', 'Arn'] },
          Filter: {
            S3Key: {
              Rules: [
                { Name: 'prefix', Value: prefix },
                { Name: 'suffix', Value: '.json' },
              ],
            },
          },
        },
      ]);
      const trigger = functions(template).get('Trigger') as Resource;
      expect(env(trigger).PROFILE_PREFIX).toBe(prefix);
      expect(env(trigger).CONFIG_BUCKET).toEqual(bucket.Properties.BucketName);
      expect(env(trigger).STATE_MACHINE_ARN).toEqual({
        Ref: 'PipelineStateMachine',
      });
    },
  );

  it('lets only S3 notifications of the config bucket invoke the trigger', () => {
    // Prepare
    const bucket = resource(main.template, 'ConfigBucket');

    // Act
    const permission = resource(main.template, 'TriggerS3Permission');

    // Assess
    expect(bucket.DependsOn).toEqual(['TriggerS3Permission']);
    expect(permission.Properties).toEqual({
      FunctionName: { 'Fn::GetAtt': ['TriggerLambdaFunction', 'Arn'] },
      Action: 'lambda:InvokeFunction',
      Principal: 's3.amazonaws.com',
      SourceArn: {
        'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket.Properties.BucketName['Fn::Sub']}`,
      },
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
  });

  it('fires the trigger weekly by default, and not at all when switched off', () => {
    // Act
    const rules = (template: Template) =>
      resourcesOfType(template, 'AWS::Events::Rule').map(([id, rule]) => ({
        id,
        expression: rule.Properties.ScheduleExpression,
        state: rule.Properties.State,
        targets: rule.Properties.Targets.map(
          (target: { Arn: unknown }) => target.Arn,
        ),
      }));

    // Assess
    const target = { 'Fn::GetAtt': ['TriggerLambdaFunction', 'Arn'] };
    expect(rules(main.template)).toEqual([
      {
        id: 'TriggerEventsRuleSchedule1',
        expression: 'cron(0 4 ? * MON *)',
        state: 'ENABLED',
        targets: [target],
      },
    ]);
    expect(rules(alternate.template)).toEqual([
      {
        id: 'TriggerEventsRuleSchedule1',
        expression: 'rate(14 days)',
        state: 'DISABLED',
        targets: [target],
      },
    ]);
    const permission = resource(
      main.template,
      'TriggerLambdaPermissionEventsRuleSchedule1',
    );
    expect(permission.Properties.Principal).toBe('events.amazonaws.com');
    expect(permission.Properties.SourceArn).toEqual({
      'Fn::GetAtt': ['TriggerEventsRuleSchedule1', 'Arn'],
    });
  });
});

describe('buckets', () => {
  it.each(['ConfigBucket', 'ArtifactsBucket'])(
    'keeps %s versioned, encrypted, private and behind TLS',
    (id) => {
      // Prepare
      const template = main.template;

      // Act
      const bucket = resource(template, id);
      const [[, policy] = []] = resourcesOfType(
        template,
        'AWS::S3::BucketPolicy',
      ).filter(([, p]) => p.Properties.Bucket.Ref === id);

      // Assess
      const props = bucket.Properties;
      expect(bucket.DeletionPolicy).toBe('Retain');
      expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(
        props.BucketEncryption.ServerSideEncryptionConfiguration[0]
          .ServerSideEncryptionByDefault.SSEAlgorithm,
      ).toMatch(/^(AES256|aws:kms)$/);
      expect(props.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(props.OwnershipControls.Rules).toEqual([
        { ObjectOwnership: 'BucketOwnerEnforced' },
      ]);
      const name = props.BucketName['Fn::Sub'];
      const denied = (policy as Resource).Properties.PolicyDocument.Statement;
      expect(denied).toEqual([
        {
          Sid: 'TlsOnly',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Resource: [
            { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${name}` },
            { 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${name}/*` },
          ],
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
      ]);
    },
  );
});

describe('keys and notifications', () => {
  it('signs with an ECC P-256 key for signing only, kept with the stack gone', () => {
    // Act
    const key = resource(main.template, 'SigningKey');

    // Assess
    expect(key.Properties.KeySpec).toBe('ECC_NIST_P256');
    expect(key.Properties.KeyUsage).toBe('SIGN_VERIFY');
    expect(key.DeletionPolicy).toBe('Retain');
    const sign = functions(main.template).get('Sign') as Resource;
    expect(env(sign).SIGNING_KEY_ID).toEqual({
      'Fn::GetAtt': ['SigningKey', 'Arn'],
    });
    expect(env(sign).ARTIFACTS_BUCKET).toEqual({ Ref: 'ArtifactsBucket' });
  });

  it('encrypts images with a new key, or with the one given', () => {
    // Prepare
    const kmsKeyOf = (template: Template) =>
      chosen(
        template,
        resource(
          template,
          'BuildProject',
        ).Properties.Environment.EnvironmentVariables.find(
          (variable: { Name: string }) => variable.Name === 'KMS_KEY_ID',
        ).Value,
      );

    // Act
    const created = kmsKeyOf(main.template);
    const given = kmsKeyOf(alternate.template);

    // Assess
    expect(condition(main.template, 'CreateEbsKey')).toBe(true);
    expect(created).toEqual({ 'Fn::GetAtt': ['EbsKey', 'Arn'] });
    expect(resource(main.template, 'EbsKey').Properties.EnableKeyRotation).toBe(
      true,
    );
    expect(condition(alternate.template, 'CreateEbsKey')).toBe(false);
    expect(given).toBe(ALTERNATE_PARAMS.ebsKmsKeyArn);
  });

  it('leaves access to both keys to IAM policies of this account', () => {
    // Act
    const statements = resourcesOfType(main.template, 'AWS::KMS::Key').flatMap(
      ([, key]) => key.Properties.KeyPolicy.Statement as Statement[],
    );

    // Assess
    expect(statements).toHaveLength(2);
    for (const statement of statements) {
      expect(statement.Principal).toEqual({
        AWS: {
          'Fn::Sub': `arn:\${AWS::Partition}:iam::\${AWS::AccountId}:root`,
        },
      });
    }
  });

  it('notifies a topic, with an email subscription only when an address is set', () => {
    // Act
    const subscription = resource(main.template, 'NotificationSubscription');

    // Assess
    const notify = functions(main.template).get('Notify') as Resource;
    expect(env(notify).TOPIC_ARN).toEqual({ Ref: 'NotificationTopic' });
    expect(resource(main.template, 'NotificationTopic').Type).toBe(
      'AWS::SNS::Topic',
    );
    expect(subscription.Properties.Endpoint).toBe(
      MAIN_PARAMS.notificationEmail,
    );
    expect(condition(main.template, subscription.Condition ?? '')).toBe(true);
    expect(condition(alternate.template, subscription.Condition ?? '')).toBe(
      false,
    );
  });
});

describe('network', () => {
  it('runs the smoke test in the VPC, reaching only the test instance', () => {
    // Prepare
    const template = alternate.template;

    // Act
    const smoke = functions(template).get('SmokeTest') as Resource;
    const smokeGroup = resource(template, 'SmokeTestSecurityGroup');
    const testGroup = resource(template, 'TestInstanceSecurityGroup');
    const ingress = resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress');

    // Assess
    expect(smoke.Properties.VpcConfig).toEqual({
      SecurityGroupIds: [{ Ref: 'SmokeTestSecurityGroup' }],
      SubnetIds: { 'Fn::Split': [',', ALTERNATE_PARAMS.smokeTestSubnetIds] },
    });
    expect(smokeGroup.Properties.VpcId).toBe(ALTERNATE_PARAMS.vpcId);
    expect(testGroup.Properties.VpcId).toBe(ALTERNATE_PARAMS.vpcId);
    expect(smokeGroup.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({
        IpProtocol: '-1',
        DestinationSecurityGroupId: {
          'Fn::GetAtt': ['TestInstanceSecurityGroup', 'GroupId'],
        },
      }),
    ]);
    expect(ingress.map(([, rule]) => rule.Properties)).toEqual([
      expect.objectContaining({
        GroupId: { 'Fn::GetAtt': ['TestInstanceSecurityGroup', 'GroupId'] },
        SourceSecurityGroupId: {
          'Fn::GetAtt': ['SmokeTestSecurityGroup', 'GroupId'],
        },
      }),
    ]);
  });

  it('smoke-tests in the test subnet unless told otherwise', () => {
    // Act
    const smoke = functions(main.template).get('SmokeTest') as Resource;

    // Assess
    expect(smoke.Properties.VpcConfig.SubnetIds).toEqual({
      'Fn::Split': [',', MAIN_PARAMS.testSubnetId],
    });
  });

  it('launches test instances in the test subnet, group and profile', () => {
    // Prepare
    const fns = functions(main.template);

    // Act
    const settings = [
      'LaunchTestInstance',
      'CheckTestInstance',
      'TerminateTestInstance',
    ].map((name) => env(fns.get(name) as Resource));

    // Assess
    for (const variables of settings) {
      expect(variables).toMatchObject({
        TEST_SUBNET_ID: MAIN_PARAMS.testSubnetId,
        TEST_SECURITY_GROUP_IDS: { Ref: 'TestInstanceSecurityGroup' },
        TEST_INSTANCE_PROFILE_ARN: {
          'Fn::GetAtt': ['TestInstanceProfile', 'Arn'],
        },
      });
    }
  });
});

describe('CodeBuild project', () => {
  it('builds from the repository with the buildspec in packer/', () => {
    // Act
    const project = resource(alternate.template, 'BuildProject').Properties;

    // Assess
    expect(project.Source).toMatchObject({
      Type: 'GITHUB',
      Location: ALTERNATE_PARAMS.sourceRepositoryUrl,
      BuildSpec: 'packer/buildspec.yml',
    });
    expect(project.SourceVersion).toBe(ALTERNATE_PARAMS.sourceVersion);
    expect(existsSync(join(ROOT, project.Source.BuildSpec))).toBe(true);
    expect(project.ServiceRole).toEqual({ 'Fn::GetAtt': ['BuildRole', 'Arn'] });
    expect(chosen(alternate.template, project.Source.Auth)).toEqual({
      Ref: 'AWS::NoValue',
    });
    expect(
      chosen(
        main.template,
        resource(main.template, 'BuildProject').Properties.Source.Auth,
      ),
    ).toEqual({
      Type: 'CODECONNECTIONS',
      Resource: MAIN_PARAMS.sourceConnectionArn,
    });
  });

  it('writes each build manifest where ResolveImage reads it', async () => {
    // Prepare
    const buildspec = parseYaml(
      await readFile(join(ROOT, 'packer', 'buildspec.yml'), 'utf8'),
    );
    const project = resource(main.template, 'BuildProject').Properties;

    // Act: the location CodeBuild reports for build <id> of this project.
    const location = `arn:aws:s3:::artifacts-bucket/${project.Artifacts.Path}/4b4ad1f2-9bd0-4f4f-a0cd-0f7f1d3c2b11`;
    const manifest = manifestObject(location);

    // Assess
    expect(project.Artifacts).toEqual({
      Type: 'S3',
      Location: { Ref: 'ArtifactsBucket' },
      Path: 'builds',
      NamespaceType: 'BUILD_ID',
      Name: '/',
      Packaging: 'NONE',
    });
    expect(buildspec.artifacts.files).toEqual([MANIFEST_FILE]);
    expect(buildspec.artifacts['discard-paths']).toBe('yes');
    expect(manifest).toEqual({
      bucket: 'artifacts-bucket',
      key: `builds/4b4ad1f2-9bd0-4f4f-a0cd-0f7f1d3c2b11/${MANIFEST_FILE}`,
    });
  });

  it('gives the buildspec every variable it requires', async () => {
    // Prepare: the variables StartBuild sets, from the runner itself.
    const codebuild = mockClient(CodeBuildClient);
    codebuild.on(StartBuildCommand).resolves({ build: { id: 'p:1' } });
    const text = await readFile(join(ROOT, 'packer', 'buildspec.yml'), 'utf8');
    try {
      await new CodeBuildRunner(
        new CodeBuildClient({ region: 'eu-west-1' }),
        new S3Client({ region: 'eu-west-1' }),
        'project',
      ).start({
        runId: 'sbc-0123456789abcdef',
        attempt: 1,
        profile: { bucket: 'b', key: 'profiles/a.json', versionId: 'v' },
        profileDigest: 'a'.repeat(64),
        baseImageId: 'ami-0123456789abcdef0',
      });
      const fromStartBuild = (
        codebuild.commandCalls(StartBuildCommand)[0]?.args[0].input
          .environmentVariablesOverride ?? []
      ).map((variable) => variable.name);

      // Act
      const fromProject = resource(
        main.template,
        'BuildProject',
      ).Properties.Environment.EnvironmentVariables.map(
        (variable: { Name: string }) => variable.Name,
      );
      const [, loop = ''] = /for name in ([^;]*); do/.exec(text) ?? [];
      const required = loop.split(/[\s\\]+/).filter((name) => name !== '');

      // Assess
      expect(required).toContain('KMS_KEY_ID');
      const provided = new Set([
        ...fromStartBuild,
        ...fromProject,
        'AWS_REGION',
      ]);
      expect(required.filter((name) => !provided.has(name))).toEqual([]);
    } finally {
      codebuild.restore();
    }
  });

  it('runs a pinned Packer checked against its SHA-256', async () => {
    // Act
    const buildspec = parseYaml(
      await readFile(join(ROOT, 'packer', 'buildspec.yml'), 'utf8'),
    );

    // Assess
    expect(buildspec.env.variables.PACKER_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(buildspec.env.variables.PACKER_SHA256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(buildspec.phases.install.commands)).toContain(
      'sha256sum --check',
    );
  });

  it('outlasts Packer waiting for the image, and the pipeline outlasts it', async () => {
    // Prepare
    const hcl = await parseHcl(
      'sbc.pkr.hcl',
      await readFile(join(ROOT, 'packer', 'sbc.pkr.hcl'), 'utf8'),
    );
    const [polling] = hcl.source['amazon-ebs'].sbc[0].aws_polling;
    const packerWaitMinutes =
      (polling.delay_seconds * polling.max_attempts) / 60;

    // Act
    const project = resource(main.template, 'BuildProject').Properties;
    const checkBuild = functions(main.template).get('CheckBuild') as Resource;

    // Assess
    expect(project.TimeoutInMinutes).toBeGreaterThan(packerWaitMinutes);
    expect(Number(env(checkBuild).BUILD_DEADLINE_MINUTES)).toBeGreaterThan(
      project.TimeoutInMinutes + project.QueuedTimeoutInMinutes,
    );
    expect(project.LogsConfig.CloudWatchLogs).toEqual({
      Status: 'ENABLED',
      GroupName: { Ref: 'BuildLogGroup' },
    });
  });
});

// -------------------------------------------------------------------- IAM

/** Condition keys that tie a resource to this pipeline. */
const TAG_KEYS = [
  'aws:ResourceTag/ManagedBy',
  'aws:RequestTag/ManagedBy',
  'ec2:CreateAction',
];

/**
 * Statements whose mutating EC2 actions on a wildcard ARN cannot carry the
 * pipeline's tag, with the condition that limits them instead (none for
 * CopyImage) and why.
 */
const UNTAGGABLE: Record<string, { key?: string; why: string }> = {
  'LaunchTestInstanceRole/RunWithNewInterface': {
    key: 'ec2:Subnet',
    why: 'the launch creates the interface, untagged, in the test subnet',
  },
  'BuildRole/RunWithNewInterface': {
    key: 'ec2:Subnet',
    why: 'the launch creates the interface, untagged, in the build subnet',
  },
  'BuildRole/RunFromAllowedBaseImage': {
    key: 'ec2:Owner',
    why: 'the base image belongs to its publisher, one of the allowed owners',
  },
  'SmokeTestRole/VpcInterfaces': {
    key: 'ec2:Vpc',
    why: "Lambda's own interfaces for the VPC attachment, in the stack's VPC",
  },
  'BuildRole/CopyToEncryptedImage': {
    why: 'the copy takes its tags from the source image, not the request',
  },
};

/** Actions by which an image or snapshot could leave the account. */
const SHARING = [
  'ec2:ModifyImageAttribute',
  'ec2:ModifySnapshotAttribute',
  'ec2:DisableImageBlockPublicAccess',
  'ec2:DisableSnapshotBlockPublicAccess',
  'ec2:CreateStoreImageTask',
  'ec2:ExportImage',
];

/** Actions a role holds beyond the SDK commands its code imports. */
const RUNTIME_ACTIONS: Record<string, string[]> = {
  // Every function writes its logs.
  '*': ['logs:CreateLogStream', 'logs:PutLogEvents'],
  // RunInstances tags on create, passes the instance profile's role and
  // has EBS create volumes from the image's encrypted snapshots.
  LaunchTestInstanceRole: [
    'ec2:CreateTags',
    'iam:PassRole',
    'kms:CreateGrant',
    'kms:Decrypt',
    'kms:DescribeKey',
    'kms:GenerateDataKeyWithoutPlaintext',
    'kms:ReEncryptFrom',
    'kms:ReEncryptTo',
  ],
  // Lambda attaches the function to the VPC with its role.
  SmokeTestRole: [
    'ec2:CreateNetworkInterface',
    'ec2:DeleteNetworkInterface',
    'ec2:AssignPrivateIpAddresses',
    'ec2:UnassignPrivateIpAddresses',
    'ec2:DescribeNetworkInterfaces',
    'ec2:DescribeSubnets',
  ],
  // SSM checks an aws:ec2:image value with the caller's permissions.
  PublishRole: ['ec2:DescribeImages'],
  // Launch template versions that name an SSM alias resolve through it.
  CleanupOrphansRole: ['ssm:GetParameters'],
};

describe('IAM', () => {
  it('gives every function a role of its own that only Lambda assumes', () => {
    // Act
    const roles = [...functions(main.template).values()].map(roleOf);

    // Assess
    expect(new Set(roles).size).toBe(roles.length);
    for (const id of roles) {
      expect(
        resource(main.template, id).Properties.AssumeRolePolicyDocument
          .Statement,
      ).toEqual([
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ]);
    }
  });

  it('trusts exactly one service in every role', () => {
    // Act
    const trusts = resourcesOfType(main.template, 'AWS::IAM::Role').map(
      ([id, role]) => [id, role.Properties.AssumeRolePolicyDocument.Statement],
    );

    // Assess
    for (const [id, statements] of trusts) {
      expect(statements, String(id)).toHaveLength(1);
      expect(Object.keys(statements[0].Principal), String(id)).toEqual([
        'Service',
      ]);
      expect(typeof statements[0].Principal.Service, String(id)).toBe('string');
    }
  });

  it('walks a statement list holding every role and policy', () => {
    // Act
    const owners = new Set(
      identityStatements(main.template).map((s) => s.owner),
    );

    // Assess
    const expected = [
      ...resourcesOfType(main.template, 'AWS::IAM::Role'),
      ...resourcesOfType(main.template, 'AWS::IAM::ManagedPolicy'),
    ].map(([id]) => id);
    expect([...owners].sort()).toEqual(expected.sort());
    // 16 function roles, the state machine's, Packer's, the test
    // instance's, and the guard and on-call policies.
    expect(owners.size).toBe(21);
  });

  it('allows no wildcard action', () => {
    // Act
    const wildcards = allowed(main.template).flatMap(({ owner, statement }) =>
      actionsOf(statement)
        .filter((action) => action.includes('*'))
        .map((action) => `${owner}: ${action}`),
    );

    // Assess
    expect(wildcards).toEqual([]);
    expect(allowed(main.template).some((s) => s.statement.NotAction)).toBe(
      false,
    );
  });

  it('allows Resource "*" only for actions that read', () => {
    // Act
    const violations = allowed(main.template).flatMap(({ owner, statement }) =>
      resourceStrings(statement.Resource).includes('*')
        ? actionsOf(statement)
            .filter((action) => !isReadOnly(action))
            .map((action) => `${owner}/${statement.Sid}: ${action}`)
        : [],
    );

    // Assess
    expect(violations).toEqual([]);
  });

  it("limits mutating EC2 actions on wildcard ARNs by the pipeline's tag", () => {
    // Prepare
    const findings: string[] = [];

    // Act
    for (const { owner, statement } of allowed(main.template)) {
      const mutating = actionsOf(statement).filter(
        (action) => action.startsWith('ec2:') && !isReadOnly(action),
      );
      const wildcard = resourceStrings(statement.Resource).some(
        hasWildcardResource,
      );
      if (mutating.length === 0 || !wildcard) {
        continue;
      }
      const values = conditionValues(statement);
      const exception = UNTAGGABLE[`${owner}/${statement.Sid}`];
      if (exception !== undefined) {
        if (exception.key !== undefined && !values.has(exception.key)) {
          findings.push(
            `${owner}/${statement.Sid} lost its ${exception.key} condition`,
          );
        }
        continue;
      }
      const tagged = TAG_KEYS.some((key) => values.has(key));
      const managedBy = [
        ...(values.get('aws:ResourceTag/ManagedBy') ?? []),
        ...(values.get('aws:RequestTag/ManagedBy') ?? []),
      ];
      if (!tagged || managedBy.some((value) => value !== MANAGED_BY_VALUE)) {
        findings.push(`${owner}/${statement.Sid}: ${mutating.join(', ')}`);
      }
    }

    // Assess
    expect(findings).toEqual([]);
  });

  it('passes only the test instance role, and only to EC2', () => {
    // Act
    const passes = allowed(main.template).filter(({ statement }) =>
      actionsOf(statement).includes('iam:PassRole'),
    );

    // Assess
    expect(passes.map((item) => item.owner)).toEqual([
      'LaunchTestInstanceRole',
    ]);
    for (const { statement } of passes) {
      expect(resourceStrings(statement.Resource)).toEqual([
        'TestInstanceRole.Arn',
      ]);
      expect(conditionValues(statement).get('iam:PassedToService')).toEqual([
        'ec2.amazonaws.com',
      ]);
    }
  });

  it('never lets an image or snapshot be shared, exported or made public', () => {
    // Prepare
    const guard = resource(main.template, 'ImageSharingGuardPolicy');

    // Act
    const grants = allowed(main.template).flatMap(({ owner, statement }) =>
      actionsOf(statement)
        .filter((action) => SHARING.includes(action))
        .map((action) => ({ owner, sid: statement.Sid, action, statement })),
    );

    // Assess: only Packer sets attributes, only on the run's own images.
    expect(
      grants.map(({ owner, sid, action }) => `${owner}/${sid}: ${action}`),
    ).toEqual(['BuildRole/SetImageAttributes: ec2:ModifyImageAttribute']);
    const values = conditionValues(grants[0]?.statement as Statement);
    expect(values.get('aws:ResourceTag/ManagedBy')).toEqual([MANAGED_BY_VALUE]);
    expect(values.get('aws:ResourceTag/sbc-ami:run-id')).toEqual(['false']);
    expect(guard.Properties.PolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Effect: 'Deny',
        Action: SHARING,
        Resource: '*',
      }),
    ]);
    for (const [id, role] of resourcesOfType(main.template, 'AWS::IAM::Role')) {
      if (id === 'BuildRole') {
        expect(
          statementBySid(main.template, id, 'NoSharingOrExport'),
        ).toMatchObject({
          Effect: 'Deny',
          Action: SHARING.filter((a) => a !== 'ec2:ModifyImageAttribute'),
          Resource: '*',
        });
      } else {
        expect(role.Properties.ManagedPolicyArns, id).toContainEqual({
          Ref: 'ImageSharingGuardPolicy',
        });
      }
    }
  });

  it('grants each function only actions its code can send', async () => {
    // Prepare
    const fns = [...functions(main.template)];

    // Act
    const extra: string[] = [];
    for (const [, fn] of fns) {
      const role = roleOf(fn);
      const entry = `${(fn.Properties.Handler as string).replace(/\.handler$/, '')}.ts`;
      const reachable = await reachableActions(entry);
      const expected = new Set([
        ...reachable,
        ...(RUNTIME_ACTIONS['*'] ?? []),
        ...(RUNTIME_ACTIONS[role] ?? []),
      ]);
      for (const action of grantedActions(main.template, role)) {
        if (!expected.has(action)) {
          extra.push(`${role}: ${action}`);
        }
      }
    }

    // Assess
    expect(fns).toHaveLength(16);
    expect(extra).toEqual([]);
  });

  it('documents exactly the actions each role and policy grants', async () => {
    // Prepare
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## IAM');
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end < 0 ? undefined : end);

    // Act: table rows `| ... | \`Owner\` | actions ... |`
    const documented = new Map<string, Set<string>>();
    for (const line of section.split('\n')) {
      const cells = line.split('|').map((cell) => cell.trim());
      const owner = /^`(\w+)`$/.exec(cells[2] ?? '')?.[1];
      if (owner !== undefined) {
        const actions = [...(cells[3] ?? '').matchAll(/`([a-z0-9-]+:\w+)`/g)];
        documented.set(owner, new Set(actions.map((m) => m[1] ?? '')));
      }
    }

    // Assess
    const owners = new Set(allowed(main.template).map((item) => item.owner));
    expect([...documented.keys()].sort()).toEqual([...owners].sort());
    for (const owner of owners) {
      // Log writing is stated once for all, not per row.
      const granted = [...grantedActions(main.template, owner)].filter(
        (action) => !action.startsWith('logs:'),
      );
      expect([...(documented.get(owner) ?? [])].sort(), owner).toEqual(
        granted.sort(),
      );
    }
  });

  it('lets on-call engineers start, watch and redrive this state machine only', () => {
    // Act
    const statements = allowed(main.template).filter(
      (item) => item.owner === 'OnCallPolicy',
    );

    // Assess
    expect(
      statements.map(({ statement }) => ({
        actions: actionsOf(statement).sort(),
        resources: resourceStrings(statement.Resource),
      })),
    ).toEqual([
      {
        actions: ['states:ListExecutions', 'states:StartExecution'],
        resources: ['ref:PipelineStateMachine'],
      },
      {
        actions: [
          'states:DescribeExecution',
          'states:GetExecutionHistory',
          'states:RedriveExecution',
        ],
        resources: [
          `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:sbc-ami-pipeline-test:*`,
        ],
      },
    ]);
  });

  it('lets the launch use the image key through EC2 grants only', () => {
    // Act
    const grant = statementBySid(
      main.template,
      'LaunchTestInstanceRole',
      'GrantImageKeyToEc2',
    );
    const use = statementBySid(
      main.template,
      'LaunchTestInstanceRole',
      'UseImageKey',
    );

    // Assess
    for (const statement of [grant, use]) {
      expect(chosen(main.template, statement.Resource)).toEqual({
        'Fn::GetAtt': ['EbsKey', 'Arn'],
      });
      expect(conditionValues(statement).get('kms:ViaService')).toEqual([
        'ec2.eu-west-1.amazonaws.com',
      ]);
    }
    expect(conditionValues(grant).get('kms:GrantIsForAWSResource')).toEqual([
      'true',
    ]);
    const alternateGrant = statementBySid(
      alternate.template,
      'LaunchTestInstanceRole',
      'GrantImageKeyToEc2',
    );
    expect(chosen(alternate.template, alternateGrant.Resource)).toBe(
      ALTERNATE_PARAMS.ebsKmsKeyArn,
    );
  });

  it('lets Sign use only its key, its folder and its two tags', () => {
    // Act
    const sign = (sid: string) =>
      statementBySid(main.template, 'SignRole', sid);

    // Assess
    expect(resourceStrings(sign('SignAttestation').Resource)).toEqual([
      'SigningKey.Arn',
    ]);
    expect(resourceStrings(sign('StoreAttestation').Resource)).toEqual([
      expect.stringMatching(/-artifacts-.*\/attestations\/\*$/),
    ]);
    expect(conditionValues(sign('TagAttestation')).get('aws:TagKeys')).toEqual([
      'sbc-ami:subject-digest',
      'sbc-ami:attestation',
    ]);
  });

  it('lets Publish undo what it changed, and DiscardImage see what uses an image', () => {
    // Prepare
    const underPrefix =
      `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:` +
      'parameter/sbc-ami/*';

    // Act
    const sid = (owner: string, name: string) =>
      statementBySid(main.template, owner, name);
    // The statements CloudFormation keeps, conditions evaluated.
    const sids = (template: Template, owner: string) =>
      (
        resource(template, owner).Properties.Policies[0].PolicyDocument
          .Statement as unknown[]
      )
        .map((item) => chosen(template, item) as Statement)
        .map((item) => item.Sid);

    // Assess: the parameter's undo stays under the prefix.
    const write = sid('PublishRole', 'WritePublishedImage');
    expect(actionsOf(write)).toContain('ssm:DeleteParameter');
    expect(resourceStrings(write.Resource)).toEqual([underPrefix]);
    // Versions are deleted on the configured templates only.
    expect(actionsOf(sid('PublishRole', 'NewLaunchTemplateVersion'))).toContain(
      'ec2:DeleteLaunchTemplateVersions',
    );
    expect(actionsOf(sid('PublishRole', 'ReadLaunchTemplates'))).toEqual([
      'ec2:DescribeLaunchTemplates',
    ]);
    // DiscardImage reads the history under the prefix, and the versions.
    const history = sid('DiscardImageRole', 'ReadPublishedHistory');
    expect(actionsOf(history)).toEqual(['ssm:GetParameterHistory']);
    expect(resourceStrings(history.Resource)).toEqual([underPrefix]);
    expect(
      actionsOf(sid('DiscardImageRole', 'ReadLaunchTemplateVersions')),
    ).toEqual(['ec2:DescribeLaunchTemplateVersions']);
    const discard = [...functions(main.template)].find(
      ([, fn]) => fn.Properties.Handler === 'functions/discard-image.handler',
    )?.[1];
    expect(discard?.Properties.Environment.Variables).toMatchObject({
      PARAMETER_PREFIX: '/sbc-ami',
      LAUNCH_TEMPLATE_IDS: MAIN_PARAMS.launchTemplateIds,
    });
    // Without launch templates, no template statement at all.
    expect(sids(main.template, 'PublishRole')).toContain('ReadLaunchTemplates');
    expect(sids(alternate.template, 'PublishRole')).not.toContain(
      'ReadLaunchTemplates',
    );
    expect(sids(alternate.template, 'DiscardImageRole')).not.toContain(
      'ReadLaunchTemplateVersions',
    );
  });

  it('lets Publish change the configured launch templates only', () => {
    // Act
    const statement = statementBySid(
      main.template,
      'PublishRole',
      'NewLaunchTemplateVersion',
    );

    // Assess
    expect(resourceStrings(statement.Resource)).toEqual([
      'arn:aws:ec2:eu-west-1:*:launch-template/lt-0123456789abcdef0',
      'arn:aws:ec2:eu-west-1:*:launch-template/lt-0fedcba9876543210',
    ]);
    const last = (template: Template) =>
      resource(
        template,
        'PublishRole',
      ).Properties.Policies[0].PolicyDocument.Statement.at(-1);
    expect(chosen(alternate.template, last(alternate.template))).toEqual({
      Ref: 'AWS::NoValue',
    });
  });
});
