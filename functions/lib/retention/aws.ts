import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { Ec2ImageStore } from '../aws/image-store.ts';
import { parameterPrefixEnv } from '../aws/publisher.ts';
import { readConfig } from '../config.ts';
import { ConfigurationError } from '../errors.ts';
import type { ImageStore } from '../ports.ts';
import { CodeBuildRunLookup } from './aws-builds.ts';
import { AwsInventorySource } from './aws-inventory.ts';
import { Ec2LeftoverSweeper } from './aws-leftovers.ts';
import type { CleanupDeps } from './cleanup.ts';
import type { DeletionOptions } from './deletion.ts';
import { ApiCallCounter } from './paging.ts';

export interface AwsCleanupOptions {
  /** The SDK's default region chain applies when omitted. */
  readonly region?: string;
  /** SSM path of the published parameters (`PARAMETER_PREFIX`). */
  readonly parameterPrefix: string;
  readonly parameterNames?: readonly string[];
  /** The CodeBuild project that runs Packer (`CODEBUILD_PROJECT`). */
  readonly projectName: string;
  readonly runIdVariable?: string;
  readonly recordedSnapshotIds?: readonly string[];
  /** Clients to use instead of new ones (tests, shared configuration). */
  readonly clients?: {
    readonly ec2?: EC2Client;
    readonly autoScaling?: AutoScalingClient;
    readonly ssm?: SSMClient;
    readonly codeBuild?: CodeBuildClient;
  };
  /** Defaults to the EC2 image store on the same EC2 client. */
  readonly imageStore?: ImageStore;
  readonly deletion?: Omit<DeletionOptions, 'inUseRetries'>;
  readonly securityGroupRetries?: number;
  readonly leftoverRetryDelayMs?: number;
  readonly progress?: (line: string) => void;
}

/** The cleanup of this account and region, wired to AWS. */
export function awsCleanupDeps(options: AwsCleanupOptions): CleanupDeps {
  if (!/^\/[A-Za-z0-9_./-]+$/.test(options.parameterPrefix)) {
    throw new ConfigurationError(
      `parameterPrefix must be an SSM path starting with /, got ` +
        `"${options.parameterPrefix}"`,
      { data: { field: 'parameterPrefix' } },
    );
  }
  if (options.projectName.trim() === '') {
    throw new ConfigurationError('projectName must name a CodeBuild project', {
      data: { field: 'projectName' },
    });
  }

  const config = options.region === undefined ? {} : { region: options.region };
  const ec2 = options.clients?.ec2 ?? new EC2Client(config);
  const counter = new ApiCallCounter();
  const store = countingStore(
    options.imageStore ?? new Ec2ImageStore(ec2),
    counter,
  );
  const builds = new CodeBuildRunLookup({
    codeBuild: options.clients?.codeBuild ?? new CodeBuildClient(config),
    projectName: options.projectName,
    runIdVariable: options.runIdVariable,
    counter,
  });
  return {
    inventory: new AwsInventorySource({
      ec2,
      autoScaling:
        options.clients?.autoScaling ?? new AutoScalingClient(config),
      ssm: options.clients?.ssm ?? new SSMClient(config),
      parameterPrefix: options.parameterPrefix,
      parameterNames: options.parameterNames,
      recordedSnapshotIds: options.recordedSnapshotIds,
      counter,
    }),
    store,
    leftovers: new Ec2LeftoverSweeper({
      ec2,
      counter,
      securityGroupRetries: options.securityGroupRetries,
      retryDelayMs: options.leftoverRetryDelayMs,
    }),
    isBuildRunning: builds.isBuildRunning,
    apiCalls: () => counter.snapshot(),
    deletion: options.deletion,
    progress: options.progress,
  };
}

/**
 * The cleanup of the deployed stack: `PARAMETER_PREFIX` (default
 * `/sbc-ami`) and `CODEBUILD_PROJECT`, read once, named when malformed.
 */
export function awsCleanupDepsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): CleanupDeps {
  const config = readConfig(
    z.object({
      PARAMETER_PREFIX: parameterPrefixEnv,
      CODEBUILD_PROJECT: z.string().min(1),
    }),
    env,
  );
  return awsCleanupDeps({
    parameterPrefix: config.PARAMETER_PREFIX,
    projectName: config.CODEBUILD_PROJECT,
  });
}

/** The port calls counted, by the EC2 command each one sends. */
const COUNTED: Readonly<Record<string, string>> = {
  deregisterImage: 'DeregisterImage',
  deleteSnapshot: 'DeleteSnapshot',
};

/**
 * Counts the store's deletions with the listing calls. The EC2 store sends
 * one EC2 call per port call, so the names are the EC2 commands. A proxy,
 * so a method added to the port later passes through untouched.
 */
function countingStore(store: ImageStore, counter: ApiCallCounter): ImageStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') {
        return value;
      }
      const command =
        typeof property === 'string' ? COUNTED[property] : undefined;
      return (...args: unknown[]) => {
        if (command !== undefined) {
          counter.add(command);
        }
        return value.apply(target, args);
      };
    },
  });
}
