import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  ModifyLaunchTemplateCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { SignCommand } from '@aws-sdk/client-kms';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PublishCommand } from '@aws-sdk/client-sns';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  parseEnvelope,
  verifyEnvelope,
} from '../../functions/lib/attest/index.ts';
import type { PipelineSettings } from '../../functions/lib/pipeline/settings.ts';
import { runProbe } from '../../functions/lib/probe/index.ts';
import {
  KAMAILIO_NEEDS,
  type KamailioServer,
  ROUTES,
  startKamailio,
} from '../support/kamailio.ts';
import { createPki, type TestPki } from '../support/pki.ts';
import { describeWithSystem } from '../support/system.ts';
import { type Probe, runPipeline, unusedPort } from './harness.ts';
import {
  ARTIFACTS_BUCKET,
  AwsWorld,
  IMAGE_ID,
  INSTANCE_ID,
  LAUNCH_TEMPLATE_ID,
  SNAPSHOT_ID,
} from './world.ts';

/** The example profile's SBC name: the smoke test sends it as SNI. */
const FQDN = 'sbc.example.com';

describeWithSystem(
  'pipeline definition: smoke test against a real Kamailio',
  KAMAILIO_NEEDS,
  () => {
    let pki: TestPki;
    let healthy: KamailioServer;
    let notFound: KamailioServer;
    let world: AwsWorld;
    let closedPort: number;

    beforeAll(async () => {
      pki = await createPki();
      const leaf = await pki.issueLeaf('sbc', { commonName: FQDN });
      const tls = {
        certificateFile: leaf.chainFile,
        privateKeyFile: leaf.keyFile,
      };
      healthy = await startKamailio({ tls, aliases: [FQDN] });
      notFound = await startKamailio({
        tls,
        aliases: [FQDN],
        route: ROUTES.notFound,
      });
      closedPort = await unusedPort();
    });

    afterAll(async () => {
      await healthy?.stop();
      await notFound?.stop();
      await pki?.remove();
    });

    beforeEach(() => {
      world = new AwsWorld();
    });

    afterEach(() => {
      world.restore();
    });

    /** The real probe, aimed at a Kamailio standing in for the test instance. */
    function probeOf(server: KamailioServer): Probe {
      return (options) =>
        runProbe({
          ...options,
          udpPort: server.sipPort,
          tcpPort: server.sipPort,
          tlsPort: server.tlsPort,
          caFile: pki.root.certFile,
        });
    }

    const withClosedPort =
      () =>
      (settings: PipelineSettings): PipelineSettings => ({
        ...settings,
        smoke: { ...settings.smoke, closedPorts: [`${closedPort}/tcp`] },
      });

    it('builds, tests, signs, publishes, terminates and notifies on the happy path', async () => {
      // Act
      const run = await runPipeline({
        probe: probeOf(healthy),
        settings: withClosedPort(),
      });

      // Assess: the outcome
      expect(run.status).toBe('SUCCEEDED');
      expect(run.path.at(-1)).toBe('Published');
      // The retention cleanup ran to its end and kept the new image.
      expect(run.output).toMatchObject({
        cleanup: { dryRun: false, deleted: 0, failed: 0 },
      });

      // Signed: KMS signed once, the envelope stored with the artifacts, and it
      // verifies with the key's public half.
      expect(world.kms.commandCalls(SignCommand)).toHaveLength(1);
      const put = world.s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
      expect(put?.Bucket).toBe(ARTIFACTS_BUCKET);
      const envelope = parseEnvelope(
        JSON.parse(String(put?.Body)),
        'PutObject',
      );
      const publicPem = world.key.publicKey.export({
        type: 'spki',
        format: 'pem',
      });
      expect(verifyEnvelope(envelope, String(publicPem)).ok).toBe(true);

      // Published: validated tag, the parameter read back, a template version.
      const tagged = world.ec2
        .commandCalls(CreateTagsCommand)
        .flatMap((c) => c.args[0].input.Tags ?? []);
      expect(tagged).toContainEqual({
        Key: 'sbc-ami:validated',
        Value: 'true',
      });
      const parameter =
        world.ssm.commandCalls(PutParameterCommand)[0]?.args[0].input;
      expect(parameter).toMatchObject({
        Name: '/sbc-ami/genesys-byoc-example/image-id',
        Value: IMAGE_ID,
        DataType: 'aws:ec2:image',
        Overwrite: true,
      });
      expect(
        world.ssm.commandCalls(GetParameterCommand).length,
      ).toBeGreaterThan(0);
      expect(
        world.ec2.commandCalls(CreateLaunchTemplateVersionCommand)[0]?.args[0]
          .input,
      ).toMatchObject({
        LaunchTemplateId: LAUNCH_TEMPLATE_ID,
        LaunchTemplateData: { ImageId: IMAGE_ID },
      });
      expect(
        world.ec2.commandCalls(ModifyLaunchTemplateCommand)[0]?.args[0].input,
      ).toEqual({ LaunchTemplateId: LAUNCH_TEMPLATE_ID, DefaultVersion: '7' });

      // Terminated after publishing, and nothing deregistered.
      const names = world.commandNames(world.ec2);
      expect(names.indexOf('TerminateInstancesCommand')).toBeGreaterThan(
        names.indexOf('CreateLaunchTemplateVersionCommand'),
      );
      expect(
        world.ec2.commandCalls(TerminateInstancesCommand)[0]?.args[0].input,
      ).toEqual({ InstanceIds: [INSTANCE_ID] });
      expect(world.ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);

      // Notified.
      const notice = world.sns.commandCalls(PublishCommand)[0]?.args[0].input;
      expect(notice?.Subject).toBe('SBC image published: genesys-byoc-example');
      expect(notice?.Message).toContain(`image: ${IMAGE_ID}`);
    });

    it('stays under 100 state transitions for a successful run', async () => {
      const run = await runPipeline({
        probe: probeOf(healthy),
        settings: withClosedPort(),
      });

      expect(run.status).toBe('SUCCEEDED');
      expect(run.path.length).toBeLessThan(100);
    });

    it('terminates, deregisters, deletes snapshots and notifies when the smoke test fails', async () => {
      const run = await runPipeline({
        probe: probeOf(notFound),
        settings: withClosedPort(),
      });

      // The run fails with a reason a person can read.
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('SmokeTestFailedError');
      expect(run.cause).toMatch(
        /^SmokeTestFailedError: smoke test of ami-\w+ failed: .*404/,
      );

      // Nothing published.
      expect(world.ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
      expect(
        world.ec2.commandCalls(CreateLaunchTemplateVersionCommand),
      ).toHaveLength(0);
      expect(world.kms.commandCalls(SignCommand)).toHaveLength(0);

      // Rolled back in order: instance, image, then its snapshot.
      const names = world.commandNames(world.ec2);
      const terminate = names.indexOf('TerminateInstancesCommand');
      const deregister = names.indexOf('DeregisterImageCommand');
      const deleteSnapshot = names.indexOf('DeleteSnapshotCommand');
      expect(terminate).toBeGreaterThanOrEqual(0);
      expect(deregister).toBeGreaterThan(terminate);
      expect(deleteSnapshot).toBeGreaterThan(deregister);
      expect(
        world.ec2.commandCalls(DeleteSnapshotCommand)[0]?.args[0].input,
      ).toEqual({ SnapshotId: SNAPSHOT_ID });

      const notice = world.sns.commandCalls(PublishCommand)[0]?.args[0].input;
      expect(notice?.Subject).toBe(
        'SBC image build failed: genesys-byoc-example',
      );
      expect(notice?.Message).toContain('SmokeTestFailedError');
    });

    it('retries throttled calls after the smoke test and still publishes', async () => {
      let putCalls = 0;
      world.ssm
        .on(PutParameterCommand)
        .callsFake((input: PutParameterCommand['input']) => {
          putCalls += 1;
          if (putCalls === 1) {
            throw Object.assign(new Error('Rate exceeded'), {
              name: 'ThrottlingException',
            });
          }
          world.parameterValue = input.Value;
          return { Version: 5 };
        });
      let notices = 0;
      world.sns.on(PublishCommand).callsFake(() => {
        notices += 1;
        if (notices === 1) {
          throw Object.assign(new Error('Rate exceeded'), {
            name: 'Throttling',
          });
        }
        return { MessageId: 'm-2' };
      });

      const run = await runPipeline({
        probe: probeOf(healthy),
        settings: withClosedPort(),
      });

      expect(run.status).toBe('SUCCEEDED');
      expect(
        run.events.filter((e) => e.type === 'StateRetried').map((e) => e.state),
      ).toEqual(['Publish', 'NotifySuccess']);
      expect(world.ssm.commandCalls(PutParameterCommand)).toHaveLength(2);
    });
  },
);
