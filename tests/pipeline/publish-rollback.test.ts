import {
  CreateLaunchTemplateVersionCommand,
  DeleteLaunchTemplateVersionsCommand,
  DeregisterImageCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { PublishCommand } from '@aws-sdk/client-sns';
import {
  DeleteParameterCommand,
  PutParameterCommand,
} from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import type { PipelineSettings } from '../../functions/lib/pipeline/settings.ts';
import { runProbe } from '../../functions/lib/probe/index.ts';
import {
  KAMAILIO_NEEDS,
  type KamailioServer,
  startKamailio,
} from '../support/kamailio.ts';
import { createPki, type TestPki } from '../support/pki.ts';
import { describeWithSystem } from '../support/system.ts';
import { type PipelineRun, runPipeline, unusedPort } from './harness.ts';
import {
  AwsWorld,
  IMAGE_ID,
  LAUNCH_TEMPLATE_ID,
  PARAMETER_NAME,
  PREVIOUS_IMAGE_ID,
  SECOND_TEMPLATE_ID,
  SNAPSHOT_ID,
} from './world.ts';

/** The example profile's SBC name: the smoke test sends it as SNI. */
const FQDN = 'sbc.example.com';
const BOTH_TEMPLATES = [LAUNCH_TEMPLATE_ID, SECOND_TEMPLATE_ID];

describeWithSystem(
  'pipeline definition: a publish that fails half way',
  KAMAILIO_NEEDS,
  () => {
    let pki: TestPki;
    let healthy: KamailioServer;
    let world: AwsWorld;
    let closedPort: number;

    beforeAll(async () => {
      pki = await createPki();
      const leaf = await pki.issueLeaf('sbc', { commonName: FQDN });
      healthy = await startKamailio({
        tls: { certificateFile: leaf.chainFile, privateKeyFile: leaf.keyFile },
        aliases: [FQDN],
      });
      closedPort = await unusedPort();
    });

    afterAll(async () => {
      await healthy?.stop();
      await pki?.remove();
    });

    beforeEach(() => {
      world = new AwsWorld();
    });

    afterEach(() => {
      world.restore();
    });

    /** A run whose smoke test passes against the real Kamailio. */
    function publishRun(
      launchTemplateIds: readonly string[] = [LAUNCH_TEMPLATE_ID],
    ): Promise<PipelineRun> {
      return runPipeline({
        launchTemplateIds,
        probe: (options) =>
          runProbe({
            ...options,
            udpPort: healthy.sipPort,
            tcpPort: healthy.sipPort,
            tlsPort: healthy.tlsPort,
            caFile: pki.root.certFile,
          }),
        settings: (settings: PipelineSettings) => ({
          ...settings,
          smoke: { ...settings.smoke, closedPorts: [`${closedPort}/tcp`] },
        }),
      });
    }

    function notice(): string {
      const calls = world.sns.commandCalls(PublishCommand);
      expect(calls).toHaveLength(1);
      return String(calls[0]?.args[0].input.Message);
    }

    /** Every image any version of the template names. */
    function templateImages(id: string): string[] {
      return [...world.template(id).versions.values()];
    }

    it('undoes everything, then discards the image, when a version is refused', async () => {
      // Prepare: the first template takes the version, the second refuses.
      world.parameterValue = PREVIOUS_IMAGE_ID;
      world.refuse(
        `CreateLaunchTemplateVersion ${SECOND_TEMPLATE_ID}`,
        'UnauthorizedOperation',
      );

      // Act
      const run = await publishRun(BOTH_TEMPLATES);

      // Assess: failed at Publish, with the cause and the rollback named.
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('PublishError');
      expect(run.path).toEqual(
        expect.arrayContaining(['Publish', 'DiscardImage', 'NotifyFailure']),
      );
      expect(run.cause).toContain(
        `CreateLaunchTemplateVersion ${SECOND_TEMPLATE_ID}: ` +
          'UnauthorizedOperation',
      );

      // The parameter holds the previous image again, read back.
      expect(world.parameterValue).toBe(PREVIOUS_IMAGE_ID);
      expect(world.parameterHistory).toEqual([
        PREVIOUS_IMAGE_ID,
        IMAGE_ID,
        PREVIOUS_IMAGE_ID,
      ]);
      expect(world.ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);

      // The first template's default is 6 again and version 7 is gone.
      expect(world.template(LAUNCH_TEMPLATE_ID).defaultVersion).toBe(6);
      expect(templateImages(LAUNCH_TEMPLATE_ID)).not.toContain(IMAGE_ID);
      expect(
        world.ec2
          .commandCalls(DeleteLaunchTemplateVersionsCommand)
          .map((call) => call.args[0].input),
      ).toEqual([{ LaunchTemplateId: LAUNCH_TEMPLATE_ID, Versions: ['7'] }]);
      expect(templateImages(SECOND_TEMPLATE_ID)).not.toContain(IMAGE_ID);

      // Nothing points at the image any more, so the failure path removes
      // it, after the rollback.
      const names = world.commandNames(world.ec2);
      expect(world.imageDeregistered).toBe(true);
      expect(names.indexOf('DeregisterImageCommand')).toBeGreaterThan(
        names.lastIndexOf('DeleteLaunchTemplateVersionsCommand'),
      );

      // The notice names the cause and what was rolled back.
      const text = notice();
      expect(text).toContain('reason: PublishError');
      expect(text).toContain('UnauthorizedOperation');
      expect(text).toContain(
        `parameter ${PARAMETER_NAME} back to ${PREVIOUS_IMAGE_ID}`,
      );
      expect(text).not.toContain('left behind');
    });

    it('deletes the parameter it created when there was none before', async () => {
      // Prepare
      world.refuse('CreateLaunchTemplateVersion', 'UnauthorizedOperation');

      // Act
      const run = await publishRun();

      // Assess
      expect(run.error).toBe('PublishError');
      expect(
        world.ssm.commandCalls(DeleteParameterCommand)[0]?.args[0].input,
      ).toEqual({ Name: PARAMETER_NAME });
      expect(world.parameterValue).toBeUndefined();
      expect(world.template().defaultVersion).toBe(6);
      expect(world.imageDeregistered).toBe(true);
      expect(notice()).toContain(
        `parameter ${PARAMETER_NAME} deleted (it did not exist before)`,
      );
    });

    it('keeps the image and says so when the rollback cannot restore the parameter', async () => {
      // Prepare: the publish's put goes through, the restoring one is refused.
      world.parameterValue = PREVIOUS_IMAGE_ID;
      world.refuse('ModifyLaunchTemplate', 'UnauthorizedOperation');
      world.refuse('PutParameter', null, 'AccessDeniedException');

      // Act
      const run = await publishRun();

      // Assess: the version created was still deleted...
      expect(run.error).toBe('PublishError');
      expect(run.cause).toContain('NOT rolled back');
      expect(templateImages(LAUNCH_TEMPLATE_ID)).not.toContain(IMAGE_ID);

      // ...but production still points at the image, so it stays.
      expect(world.parameterValue).toBe(IMAGE_ID);
      expect(world.ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
      expect(world.imageDeregistered).toBe(false);
      const text = notice();
      expect(text).toContain('left behind, delete by hand:');
      expect(text).toContain(
        `${IMAGE_ID} and its snapshots ${SNAPSHOT_ID} kept, still ` +
          'in use: the published value of profile genesys-byoc-example',
      );
      expect(text).toContain(
        `set it back to ${PREVIOUS_IMAGE_ID} (AccessDeniedException`,
      );
    });

    it('rolls back a throttled step, retries, and ends with one version', async () => {
      // Prepare
      world.parameterValue = PREVIOUS_IMAGE_ID;
      world.refuse('ModifyLaunchTemplate', 'RequestLimitExceeded');

      // Act
      const run = await publishRun();

      // Assess: Publish retried once, then the run published.
      expect(run.status).toBe('SUCCEEDED');
      expect(
        run.events.filter((e) => e.type === 'StateRetried').map((e) => e.state),
      ).toEqual(['Publish']);

      // The first attempt's version 7 was deleted before the retry made 8.
      const names = world.commandNames(world.ec2);
      const deleted = names.indexOf('DeleteLaunchTemplateVersionsCommand');
      const creates = names.flatMap((name, index) =>
        name === 'CreateLaunchTemplateVersionCommand' ? [index] : [],
      );
      expect(creates).toHaveLength(2);
      expect(
        world.ec2
          .commandCalls(CreateLaunchTemplateVersionCommand)
          .map((call) => call.args[0].input.LaunchTemplateData?.ImageId),
      ).toEqual([IMAGE_ID, IMAGE_ID]);
      expect(deleted).toBeGreaterThan(creates[0] ?? Number.NaN);
      expect(deleted).toBeLessThan(creates[1] ?? Number.NaN);
      expect(
        world.ec2.commandCalls(DeleteLaunchTemplateVersionsCommand)[0]?.args[0]
          .input,
      ).toEqual({ LaunchTemplateId: LAUNCH_TEMPLATE_ID, Versions: ['7'] });

      // Exactly one version names the image: the default.
      const template = world.template();
      expect(
        [...template.versions].filter(([, image]) => image === IMAGE_ID),
      ).toEqual([[8, IMAGE_ID]]);
      expect(template.defaultVersion).toBe(8);
      expect(
        world.ec2
          .commandCalls(ModifyLaunchTemplateCommand)
          .map((call) => call.args[0].input.DefaultVersion),
      ).toEqual(['7', '8']);

      // The parameter went back once, then forward for good.
      expect(world.parameterHistory).toEqual([
        PREVIOUS_IMAGE_ID,
        IMAGE_ID,
        PREVIOUS_IMAGE_ID,
        IMAGE_ID,
      ]);
      expect(world.ssm.commandCalls(PutParameterCommand)).toHaveLength(3);
      expect(world.imageDeregistered).toBe(false);
    });
  },
);
