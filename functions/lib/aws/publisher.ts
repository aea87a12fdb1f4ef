import {
  CreateLaunchTemplateVersionCommand,
  DeleteLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
  paginateDescribeLaunchTemplateVersions,
} from '@aws-sdk/client-ec2';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  PutParameterCommand,
  paginateGetParameterHistory,
  SSMClient,
} from '@aws-sdk/client-ssm';
import pRetry from 'p-retry';
import { z } from 'zod';
import { boolText, csv, readConfig } from '../config.ts';
import {
  describeError,
  isThrottling,
  PublishError,
  ThrottledError,
  throttleAware,
} from '../errors.ts';
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
  /** Retries of a throttled call while undoing a failed publish (3). */
  readonly undoRetries?: number;
  /** Delay before the first of those retries, doubling (1,000 ms). */
  readonly undoDelayMs?: number;
}

/** EC2's code for a launch template version that is already gone. */
const VERSION_GONE = 'launchTemplateVersionDoesNotExist';

/** What one launch template looked like before, and what publish did to it. */
interface TemplateChange {
  readonly templateId: string;
  /** The default version before publish changed it. */
  previousDefault?: number;
  /** The version publish created. */
  created?: number;
  /** Publish made `created` the default. */
  defaultChanged: boolean;
}

/** Everything one publish changed, in order, so that it can be undone. */
interface PublishChanges {
  readonly parameterName: string;
  readonly imageId: string;
  readonly runId: string;
  /** The step running or that failed, for the error message. */
  step: string;
  /** Set once PutParameter succeeded: the value before, or none. */
  parameter?: { readonly previous: string | undefined };
  readonly templates: TemplateChange[];
}

/** What undoing a failed publish did, as lines for a person. */
export interface UndoReport {
  readonly undone: string[];
  /** What is still changed: a person must put it back by hand. */
  readonly notUndone: string[];
}

/**
 * Publishes an image where launch templates pick it up: an SSM parameter of
 * data type `aws:ec2:image` (launch templates may resolve it) and a new
 * version of each configured launch template.
 *
 * All or nothing: each change is recorded as it is made (the parameter's
 * value before, or that it did not exist; each template's default version
 * before and the version created), and when a later step fails they are put
 * back, newest first, before the error leaves. A throttled step whose
 * changes were all undone leaves as `ThrottledError`, so that the state
 * machine retries the whole publish from where it started.
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
    const changes: PublishChanges = {
      parameterName: this.parameterName(request.profileName),
      imageId: request.imageId,
      runId: request.runId,
      step: 'GetParameter',
      templates: [],
    };
    try {
      return await this.apply(request, changes);
    } catch (error) {
      const report = await this.undo(changes);
      throw failure(error, changes, report);
    }
  }

  async history(profileName: string): Promise<string[]> {
    const values: string[] = [];
    const pages = paginateGetParameterHistory(
      { client: this.ssm },
      { Name: this.parameterName(profileName) },
    );
    try {
      await throttleAware('GetParameterHistory', async () => {
        for await (const page of pages) {
          for (const entry of page.Parameters ?? []) {
            if (entry.Value !== undefined) {
              values.push(entry.Value);
            }
          }
        }
      });
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
   * The versions of the configured launch templates that name the image,
   * as `<template> version <n>`. An SSM alias is not resolved: the
   * parameter itself is checked through `history`.
   */
  async launchTemplateVersionsUsing(imageId: string): Promise<string[]> {
    const found: string[] = [];
    for (const templateId of this.settings.launchTemplateIds) {
      const pages = paginateDescribeLaunchTemplateVersions(
        { client: this.ec2 },
        {
          LaunchTemplateId: templateId,
          Filters: [{ Name: 'image-id', Values: [imageId] }],
        },
      );
      await throttleAware('DescribeLaunchTemplateVersions', async () => {
        for await (const page of pages) {
          for (const version of page.LaunchTemplateVersions ?? []) {
            const role = version.DefaultVersion === true ? ' (default)' : '';
            found.push(
              `launch template ${templateId} version ` +
                `${version.VersionNumber ?? '?'}${role}`,
            );
          }
        }
      });
    }
    return found;
  }

  private async apply(
    request: PublishRequest,
    changes: PublishChanges,
  ): Promise<PublishResult> {
    const name = changes.parameterName;
    const previous = await this.currentValue(name);

    changes.step = 'PutParameter';
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
    changes.parameter = { previous };

    changes.step = 'the read-back of the parameter';
    await this.readBack(name, request.imageId);

    let launchTemplateVersion: number | undefined;
    for (const templateId of this.settings.launchTemplateIds) {
      const change: TemplateChange = { templateId, defaultChanged: false };
      changes.templates.push(change);
      launchTemplateVersion = await this.newTemplateVersion(
        change,
        request,
        changes,
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

  /** The parameter's value now, or undefined when it does not exist. */
  private async currentValue(name: string): Promise<string | undefined> {
    try {
      const output = await throttleAware('GetParameter', () =>
        this.ssm.send(new GetParameterCommand({ Name: name })),
      );
      return output.Parameter?.Value;
    } catch (error) {
      if (error instanceof Error && error.name === 'ParameterNotFound') {
        return undefined;
      }
      throw error;
    }
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
    change: TemplateChange,
    request: PublishRequest,
    changes: PublishChanges,
  ): Promise<number> {
    const templateId = change.templateId;
    if (this.settings.setDefaultVersion) {
      changes.step = `DescribeLaunchTemplates ${templateId}`;
      change.previousDefault = await this.defaultVersion(templateId);
    }

    changes.step = `CreateLaunchTemplateVersion ${templateId}`;
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
    change.created = version;

    if (this.settings.setDefaultVersion) {
      changes.step = `ModifyLaunchTemplate ${templateId}`;
      await throttleAware('ModifyLaunchTemplate', () =>
        this.ec2.send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: templateId,
            DefaultVersion: String(version),
          }),
        ),
      );
      change.defaultChanged = true;
    }
    return version;
  }

  private async defaultVersion(templateId: string): Promise<number> {
    const output = await throttleAware('DescribeLaunchTemplates', () =>
      this.ec2.send(
        new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [templateId] }),
      ),
    );
    const version = output.LaunchTemplates?.[0]?.DefaultVersionNumber;
    if (version === undefined) {
      throw new PublishError(`launch template ${templateId} has no default`);
    }
    return version;
  }

  /**
   * Puts back what a failed publish changed, newest change first: each
   * template's default version, then the versions it created (EC2 will not
   * delete a default version), then the parameter. Never throws: what it
   * cannot put back is reported, and the other steps go on.
   */
  private async undo(changes: PublishChanges): Promise<UndoReport> {
    const report: UndoReport = { undone: [], notUndone: [] };
    for (const change of [...changes.templates].reverse()) {
      await this.undoTemplate(change, report);
    }
    if (changes.parameter !== undefined) {
      await this.undoParameter(changes, changes.parameter.previous, report);
    }
    return report;
  }

  private async undoTemplate(
    change: TemplateChange,
    report: UndoReport,
  ): Promise<void> {
    const { templateId, created, previousDefault } = change;
    if (change.defaultChanged && previousDefault !== undefined) {
      try {
        await this.retryThrottled(() =>
          this.ec2.send(
            new ModifyLaunchTemplateCommand({
              LaunchTemplateId: templateId,
              DefaultVersion: String(previousDefault),
            }),
          ),
        );
        report.undone.push(
          `launch template ${templateId} default back to version ` +
            `${previousDefault}`,
        );
      } catch (error) {
        report.notUndone.push(
          `launch template ${templateId} still defaults to version ` +
            `${created}; set it back to ${previousDefault}, then delete ` +
            `version ${created} (${describeError(error)})`,
        );
        return;
      }
    }
    if (created === undefined) {
      return;
    }

    try {
      const output = await this.retryThrottled(() =>
        this.ec2.send(
          new DeleteLaunchTemplateVersionsCommand({
            LaunchTemplateId: templateId,
            Versions: [String(created)],
          }),
        ),
      );
      const refused = (
        output.UnsuccessfullyDeletedLaunchTemplateVersions ?? []
      ).find((item) => item.ResponseError?.Code !== VERSION_GONE);
      if (refused !== undefined) {
        throw new PublishError(
          `${refused.ResponseError?.Code ?? 'refused'}: ` +
            `${refused.ResponseError?.Message ?? 'no reason given'}`,
        );
      }
      report.undone.push(
        `launch template ${templateId} version ${created} deleted`,
      );
    } catch (error) {
      report.notUndone.push(
        `launch template ${templateId} version ${created} names the image; ` +
          `delete it (${describeError(error)})`,
      );
    }
  }

  private async undoParameter(
    changes: PublishChanges,
    previous: string | undefined,
    report: UndoReport,
  ): Promise<void> {
    const name = changes.parameterName;
    if (previous === changes.imageId) {
      report.undone.push(`parameter ${name} held ${previous} already`);
      return;
    }
    try {
      if (previous === undefined) {
        await this.deleteParameter(name);
        report.undone.push(
          `parameter ${name} deleted (it did not exist before)`,
        );
        return;
      }
      await this.retryThrottled(() =>
        this.ssm.send(
          new PutParameterCommand({
            Name: name,
            Value: previous,
            Type: 'String',
            DataType: 'aws:ec2:image',
            Overwrite: true,
            Description:
              `restored after publishing ${changes.imageId} ` +
              `(run ${changes.runId}) failed`,
          }),
        ),
      );
      await this.readBack(name, previous);
      report.undone.push(`parameter ${name} back to ${previous}`);
    } catch (error) {
      const wanted =
        previous === undefined ? 'delete it' : `set it back to ${previous}`;
      report.notUndone.push(
        `parameter ${name} may still hold ${changes.imageId}; ${wanted} ` +
          `(${describeError(error)})`,
      );
    }
  }

  private async deleteParameter(name: string): Promise<void> {
    try {
      await this.retryThrottled(() =>
        this.ssm.send(new DeleteParameterCommand({ Name: name })),
      );
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ParameterNotFound')) {
        throw error;
      }
    }
  }

  /** One undo call, retried with backoff while AWS throttles it. */
  private retryThrottled<T>(call: () => Promise<T>): Promise<T> {
    return pRetry(call, {
      retries: this.settings.undoRetries ?? 3,
      minTimeout: this.settings.undoDelayMs ?? 1_000,
      factor: 2,
      shouldRetry: ({ error }) => isThrottling(error),
    });
  }
}

/**
 * The error a failed publish leaves with: `ThrottledError` when the step
 * was throttled and everything was undone (the retry starts clean), else
 * `PublishError`, which the state machine does not retry. Both say what
 * failed, what was put back and what a person must put back.
 */
function failure(
  error: unknown,
  changes: PublishChanges,
  report: UndoReport,
): Error {
  const undone =
    report.undone.length === 0
      ? 'nothing had changed'
      : `rolled back: ${report.undone.join('; ')}`;
  const notUndone =
    report.notUndone.length === 0
      ? ''
      : `; NOT rolled back, fix by hand: ${report.notUndone.join('; ')}`;
  const message =
    `publishing ${changes.imageId} to ${changes.parameterName} failed at ` +
    `${changes.step}: ${describeError(error)}; ${undone}${notUndone}`;
  const data = {
    imageId: changes.imageId,
    failedStep: changes.step,
    undone: report.undone,
    notUndone: report.notUndone,
  };
  if (isThrottling(error) && report.notUndone.length === 0) {
    return new ThrottledError(message, { cause: error, data });
  }
  return new PublishError(message, { cause: error, data });
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
