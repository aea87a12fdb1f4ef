import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { csv, readConfig } from '../config.ts';
import { MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_RUN_ID } from '../constants.ts';
import { PipelineError, throttleAware } from '../errors.ts';
import type {
  DeleteOutcome,
  HostStatus,
  LaunchRequest,
  TestHostRunner,
} from '../ports.ts';
import { tagList } from './tags.ts';

export interface TestHostSettings {
  readonly instanceType: string;
  readonly subnetId: string;
  readonly securityGroupIds: readonly string[];
  /** Instance profile that lets first boot fetch the TLS certificate. */
  readonly instanceProfileArn?: string;
}

const NOT_FOUND = 'InvalidInstanceID.NotFound';

/** The test instance as an EC2 instance in the test subnet. */
export class Ec2TestHostRunner implements TestHostRunner {
  readonly ec2: EC2Client;
  readonly settings: TestHostSettings;

  constructor(ec2: EC2Client, settings: TestHostSettings) {
    this.ec2 = ec2;
    this.settings = settings;
  }

  async launch(request: LaunchRequest): Promise<{ instanceId: string }> {
    const tags = tagList({
      Name: `sbc-ami-test-${request.runId}`,
      [TAG_MANAGED_BY]: MANAGED_BY_VALUE,
      [TAG_RUN_ID]: request.runId,
    });
    const output = await throttleAware('RunInstances', () =>
      this.ec2.send(
        new RunInstancesCommand({
          ImageId: request.imageId,
          InstanceType: this.settings.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          SubnetId: this.settings.subnetId,
          SecurityGroupIds: [...this.settings.securityGroupIds],
          // The same run never launches two test instances.
          ClientToken: request.runId,
          MetadataOptions: {
            HttpTokens: 'required',
            HttpEndpoint: 'enabled',
            HttpPutResponseHopLimit: 1,
          },
          InstanceInitiatedShutdownBehavior: 'terminate',
          ...(this.settings.instanceProfileArn === undefined
            ? {}
            : {
                IamInstanceProfile: { Arn: this.settings.instanceProfileArn },
              }),
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
        }),
      ),
    );
    const instanceId = output.Instances?.[0]?.InstanceId;
    if (instanceId === undefined) {
      throw new PipelineError('RunInstances returned no instance id');
    }
    return { instanceId };
  }

  async status(instanceId: string): Promise<HostStatus | undefined> {
    try {
      const described = await throttleAware('DescribeInstances', () =>
        this.ec2.send(
          new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
        ),
      );
      const instance = described.Reservations?.[0]?.Instances?.[0];
      if (instance === undefined) {
        return undefined;
      }
      const state = instance.State?.Name ?? 'unknown';
      if (state !== 'running') {
        return {
          instanceId,
          state,
          reachable: false,
          detail: instance.StateReason?.Message,
        };
      }

      const checks = await throttleAware('DescribeInstanceStatus', () =>
        this.ec2.send(
          new DescribeInstanceStatusCommand({
            InstanceIds: [instanceId],
            IncludeAllInstances: true,
          }),
        ),
      );
      const status = checks.InstanceStatuses?.[0];
      const system = status?.SystemStatus?.Status ?? 'unknown';
      const own = status?.InstanceStatus?.Status ?? 'unknown';
      return {
        instanceId,
        state,
        reachable: system === 'ok' && own === 'ok',
        address: instance.PrivateIpAddress,
        detail: `system ${system}, instance ${own}`,
      };
    } catch (error) {
      if (error instanceof Error && error.name === NOT_FOUND) {
        return undefined;
      }
      throw error;
    }
  }

  async terminate(instanceId: string): Promise<DeleteOutcome> {
    try {
      const output = await throttleAware('TerminateInstances', () =>
        this.ec2.send(
          new TerminateInstancesCommand({ InstanceIds: [instanceId] }),
        ),
      );
      const previous = output.TerminatingInstances?.[0]?.PreviousState?.Name;
      return previous === 'terminated' ? 'already-gone' : 'deleted';
    } catch (error) {
      if (error instanceof Error && error.name === NOT_FOUND) {
        return 'already-gone';
      }
      throw error;
    }
  }
}

/** The test-host runner of the deployed stack, from its environment. */
export function testHostRunnerFromEnv(): Ec2TestHostRunner {
  const config = readConfig(
    z.object({
      TEST_INSTANCE_TYPE: z.string().min(1).default('t3.small'),
      TEST_SUBNET_ID: z.string().startsWith('subnet-'),
      TEST_SECURITY_GROUP_IDS: csv.pipe(
        z.array(z.string().startsWith('sg-')).min(1),
      ),
      TEST_INSTANCE_PROFILE_ARN: z.string().startsWith('arn:').optional(),
    }),
  );
  return new Ec2TestHostRunner(new EC2Client({}), {
    instanceType: config.TEST_INSTANCE_TYPE,
    subnetId: config.TEST_SUBNET_ID,
    securityGroupIds: config.TEST_SECURITY_GROUP_IDS,
    instanceProfileArn: config.TEST_INSTANCE_PROFILE_ARN,
  });
}
