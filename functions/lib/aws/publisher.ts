import {
  CreateLaunchTemplateVersionCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import {
  GetParameterCommand,
  PutParameterCommand,
  paginateGetParameterHistory,
  SSMClient,
} from '@aws-sdk/client-ssm';
import pRetry from 'p-retry';
import { z } from 'zod';
import { boolText, csv, readConfig } from '../config.ts';
import { PublishError, throttleAware } from '../errors.ts';
import type { Publisher, PublishRequest, PublishResult } from '../ports.ts';

export interface PublisherSettings {
  /** SSM path under which each profile has `<prefix>/<profile>/image-id`. */
  readonly parameterPrefix: string;
  /** Launch templates that get a new version with the image. */
  readonly launchTemplateIds: readonly string[];
  /** Make the new version each template's default. */
  readonly setDefaultVersion: boolean;
  /** Read-backs of the parameter before giving up (it validates the id). */
  readonly readBackRetries: number;
}

/**
 * Publishes an image where launch templates pick it up: an SSM parameter of
 * data type `aws:ec2:image` (launch templates may resolve it) and a new
 * version of each configured launch template.
 */
export class SsmPublisher implements Publisher {
  readonly ssm: SSMClient;
  readonly ec2: EC2Client;
  readonly settings: PublisherSettings;

  constructor(ssm: SSMClient, ec2: EC2Client, settings: PublisherSettings) {
    this.ssm = ssm;
    this.ec2 = ec2;
    this.settings = settings;
  }

  parameterName(profileName: string): string {
    return `${this.settings.parameterPrefix.replace(/\/+$/, '')}/${profileName}/image-id`;
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    const name = this.parameterName(request.profileName);
    const put = await throttleAware('PutParameter', () =>
      this.ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: request.imageId,
          Type: 'String',
          DataType: 'aws:ec2:image',
          Overwrite: true,
          Description: request.description,
        }),
      ),
    );
    await this.readBack(name, request.imageId);

    let launchTemplateVersion: number | undefined;
    for (const templateId of this.settings.launchTemplateIds) {
      launchTemplateVersion = await this.newTemplateVersion(
        templateId,
        request,
      );
    }

    return {
      parameterName: name,
      parameterVersion: put.Version,
      launchTemplateId: this.settings.launchTemplateIds.at(-1),
      launchTemplateVersion,
      location: `ssm:${name}`,
    };
  }

  async history(profileName: string): Promise<string[]> {
    const values: string[] = [];
    const pages = paginateGetParameterHistory(
      { client: this.ssm },
      { Name: this.parameterName(profileName) },
    );
    try {
      for await (const page of pages) {
        for (const entry of page.Parameters ?? []) {
          if (entry.Value !== undefined) {
            values.push(entry.Value);
          }
        }
      }
    } catch (error) {
      if (error instanceof Error && error.name === 'ParameterNotFound') {
        return [];
      }
      throw error;
    }
    // History comes oldest first; the current value is the last one.
    return values.reverse();
  }

  /**
   * An `aws:ec2:image` parameter is validated after PutParameter returns:
   * read it back until it holds the new id, a few times with backoff.
   */
  private async readBack(name: string, imageId: string): Promise<void> {
    await pRetry(
      async () => {
        const output = await this.ssm.send(
          new GetParameterCommand({ Name: name }),
        );
        const value = output.Parameter?.Value;
        if (value !== imageId) {
          throw new PublishError(
            `SSM parameter ${name} holds ${value ?? 'nothing'}, not ${imageId}`,
          );
        }
      },
      {
        retries: this.settings.readBackRetries,
        minTimeout: 500,
        factor: 2,
      },
    );
  }

  private async newTemplateVersion(
    templateId: string,
    request: PublishRequest,
  ): Promise<number> {
    const created = await throttleAware('CreateLaunchTemplateVersion', () =>
      this.ec2.send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateId: templateId,
          SourceVersion: '$Latest',
          VersionDescription: request.description.slice(0, 255),
          LaunchTemplateData: { ImageId: request.imageId },
        }),
      ),
    );
    const version = created.LaunchTemplateVersion?.VersionNumber;
    if (version === undefined) {
      throw new PublishError(
        `CreateLaunchTemplateVersion returned no version for ${templateId}`,
      );
    }
    if (this.settings.setDefaultVersion) {
      await throttleAware('ModifyLaunchTemplate', () =>
        this.ec2.send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: templateId,
            DefaultVersion: String(version),
          }),
        ),
      );
    }
    return version;
  }
}

/** SSM path prefix of the published image ids, one parameter per profile. */
export const parameterPrefixEnv = z
  .string()
  .regex(/^\/[A-Za-z0-9_./-]+$/, 'an SSM path starting with /')
  .default('/sbc-ami');

/** The publisher of the deployed stack, from its environment. */
export function publisherFromEnv(): SsmPublisher {
  const config = readConfig(
    z.object({
      PARAMETER_PREFIX: parameterPrefixEnv,
      LAUNCH_TEMPLATE_IDS: csv
        .pipe(z.array(z.string().startsWith('lt-')))
        .default([]),
      SET_DEFAULT_TEMPLATE_VERSION: boolText.default(true),
    }),
  );
  return new SsmPublisher(new SSMClient({}), new EC2Client({}), {
    parameterPrefix: config.PARAMETER_PREFIX,
    launchTemplateIds: config.LAUNCH_TEMPLATE_IDS,
    setDefaultVersion: config.SET_DEFAULT_TEMPLATE_VERSION,
    readBackRetries: 5,
  });
}
