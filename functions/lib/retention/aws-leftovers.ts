import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  type EC2Client,
  type Filter,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import pRetry from 'p-retry';
import { tagMap } from '../aws/tags.ts';
import { MANAGED_BY_VALUE, TAG_MANAGED_BY, TAG_RUN_ID } from '../constants.ts';
import { describeError, throttleAware } from '../errors.ts';
import type { LeftoverSweeper } from '../ports.ts';
import type {
  Leftover,
  LeftoverLister,
  LeftoverRemover,
  LeftoverSweepReport,
} from './inventory.ts';
import { ApiCallCounter, collectPages } from './paging.ts';

const LIVE_INSTANCE_STATES = [
  'pending',
  'running',
  'shutting-down',
  'stopping',
  'stopped',
];

/** EC2 error codes that mean the resource is already gone. */
const GONE = new Set([
  'InvalidInstanceID.NotFound',
  'InvalidKeyPair.NotFound',
  'InvalidGroup.NotFound',
  'InvalidGroupId.NotFound',
]);

export interface Ec2LeftoverSweeperOptions {
  readonly ec2: EC2Client;
  readonly counter?: ApiCallCounter;
  /**
   * Retries of a security group deletion while network interfaces (of an
   * instance still terminating) use it.
   */
  readonly securityGroupRetries?: number;
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

/**
 * What a Packer build leaves when it dies: instances, key pairs and
 * security groups carrying the pipeline's tag and a run id. Only resources
 * with both tags are ever listed or removed.
 */
export class Ec2LeftoverSweeper
  implements LeftoverSweeper, LeftoverLister, LeftoverRemover
{
  readonly options: Ec2LeftoverSweeperOptions;
  readonly counter: ApiCallCounter;

  constructor(options: Ec2LeftoverSweeperOptions) {
    this.options = options;
    this.counter = options.counter ?? new ApiCallCounter();
  }

  /** Leftovers of every run; which runs are stale is the planner's call. */
  listLeftovers(): Promise<Leftover[]> {
    return this.list({ Name: 'tag-key', Values: [TAG_RUN_ID] });
  }

  /**
   * Removes one run's leftovers (the failure path). Security groups are
   * retried until the terminated instances' interfaces are gone. Never
   * throws; `leftBehind` names what a person must delete.
   */
  async sweep(runId: string): Promise<LeftoverSweepReport> {
    const report: LeftoverSweepReport = {
      removed: [],
      leftBehind: [],
      errors: [],
    };
    let leftovers: Leftover[];
    try {
      leftovers = await this.list({
        Name: `tag:${TAG_RUN_ID}`,
        Values: [runId],
      });
    } catch (error) {
      report.leftBehind.push(`run ${runId}`);
      report.errors.push({
        id: `run ${runId}`,
        reason: `could not list its resources: ${describeError(error)}`,
      });
      return report;
    }

    return this.removeLeftovers(leftovers);
  }

  /**
   * Removes exactly these leftovers: instances first, then key pairs, then
   * security groups. Never throws; an item already gone counts as removed.
   */
  async removeLeftovers(
    leftovers: readonly Leftover[],
  ): Promise<LeftoverSweepReport> {
    const report: LeftoverSweepReport = {
      removed: [],
      leftBehind: [],
      errors: [],
    };
    const ordered = [
      ...leftovers.filter((item) => item.kind === 'instance'),
      ...leftovers.filter((item) => item.kind === 'key-pair'),
      ...leftovers.filter((item) => item.kind === 'security-group'),
    ];
    for (const item of ordered) {
      try {
        await this.remove(item);
        report.removed.push(item.id);
      } catch (error) {
        if (GONE.has(errorName(error))) {
          report.removed.push(item.id);
          continue;
        }
        report.leftBehind.push(item.id);
        report.errors.push({
          id: item.id,
          reason: `${item.kind} not removed: ${describeError(error)}`,
        });
      }
    }
    return report;
  }

  private async remove(item: Leftover): Promise<void> {
    const ec2 = this.options.ec2;
    switch (item.kind) {
      case 'instance':
        await this.call('TerminateInstances', () =>
          ec2.send(new TerminateInstancesCommand({ InstanceIds: [item.id] })),
        );
        return;
      case 'key-pair':
        await this.call('DeleteKeyPair', () =>
          ec2.send(new DeleteKeyPairCommand({ KeyPairId: item.id })),
        );
        return;
      case 'security-group':
        await pRetry(
          () =>
            this.call('DeleteSecurityGroup', () =>
              ec2.send(new DeleteSecurityGroupCommand({ GroupId: item.id })),
            ),
          {
            retries: this.options.securityGroupRetries ?? 10,
            minTimeout: this.options.retryDelayMs ?? 5_000,
            maxTimeout: this.options.maxRetryDelayMs ?? 30_000,
            shouldRetry: ({ error }) => error.name === 'DependencyViolation',
          },
        );
        return;
    }
  }

  private async list(runFilter: Filter): Promise<Leftover[]> {
    const filters: Filter[] = [
      { Name: `tag:${TAG_MANAGED_BY}`, Values: [MANAGED_BY_VALUE] },
      runFilter,
    ];
    const ec2 = this.options.ec2;

    const [reservations, keyPairs, groups] = await Promise.all([
      collectPages('DescribeInstances', async (token) => {
        const output = await this.call('DescribeInstances', () =>
          ec2.send(
            new DescribeInstancesCommand({
              Filters: [
                ...filters,
                { Name: 'instance-state-name', Values: LIVE_INSTANCE_STATES },
              ],
              MaxResults: 1000,
              NextToken: token,
            }),
          ),
        );
        return { items: output.Reservations ?? [], next: output.NextToken };
      }),
      this.call('DescribeKeyPairs', () =>
        ec2.send(new DescribeKeyPairsCommand({ Filters: filters })),
      ),
      collectPages('DescribeSecurityGroups', async (token) => {
        const output = await this.call('DescribeSecurityGroups', () =>
          ec2.send(
            new DescribeSecurityGroupsCommand({
              Filters: filters,
              MaxResults: 1000,
              NextToken: token,
            }),
          ),
        );
        return { items: output.SecurityGroups ?? [], next: output.NextToken };
      }),
    ]);

    const leftovers: Leftover[] = [];
    for (const instance of reservations.flatMap((r) => r.Instances ?? [])) {
      const runId = tagMap(instance.Tags)[TAG_RUN_ID];
      if (instance.InstanceId !== undefined && runId !== undefined) {
        leftovers.push({
          kind: 'instance',
          id: instance.InstanceId,
          runId,
          createdAt: instance.LaunchTime?.toISOString(),
          name: tagMap(instance.Tags).Name,
        });
      }
    }
    for (const keyPair of keyPairs.KeyPairs ?? []) {
      const runId = tagMap(keyPair.Tags)[TAG_RUN_ID];
      if (keyPair.KeyPairId !== undefined && runId !== undefined) {
        leftovers.push({
          kind: 'key-pair',
          id: keyPair.KeyPairId,
          runId,
          createdAt: keyPair.CreateTime?.toISOString(),
          name: keyPair.KeyName,
        });
      }
    }
    for (const group of groups) {
      const runId = tagMap(group.Tags)[TAG_RUN_ID];
      if (group.GroupId !== undefined && runId !== undefined) {
        leftovers.push({
          kind: 'security-group',
          id: group.GroupId,
          runId,
          name: group.GroupName,
        });
      }
    }
    return leftovers;
  }

  private call<T>(command: string, send: () => Promise<T>): Promise<T> {
    this.counter.add(command);
    return throttleAware(command, send);
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}
