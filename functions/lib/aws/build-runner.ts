import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { readConfig } from '../config.ts';
import { PipelineError, throttleAware } from '../errors.ts';
import type {
  BuildRunner,
  BuildState,
  ManifestEntry,
  StartBuildRequest,
} from '../ports.ts';

/** The manifest's file name, as the Packer template's post-processor writes it. */
export const MANIFEST_FILE = 'packer-manifest.json';

interface PackerManifest {
  builds?: Array<{
    name?: string;
    builder_type?: string;
    build_time?: number;
    artifact_id?: string;
    packer_run_uuid?: string;
    custom_data?: Record<string, string>;
  }>;
}

/**
 * Packer builds as CodeBuild builds of one project; each build's artifacts
 * (the Packer manifest) land in S3 under the build's own path.
 */
export class CodeBuildRunner implements BuildRunner {
  readonly codebuild: CodeBuildClient;
  readonly s3: S3Client;
  readonly projectName: string;

  constructor(codebuild: CodeBuildClient, s3: S3Client, projectName: string) {
    this.codebuild = codebuild;
    this.s3 = s3;
    this.projectName = projectName;
  }

  async start(request: StartBuildRequest): Promise<{ buildId: string }> {
    // The run id stays the token across retries of one start; a new start
    // after an infrastructure fault needs a token of its own.
    const token =
      request.attempt === 1
        ? request.runId
        : `${request.runId}-start-${request.attempt}`;
    const variables: Record<string, string> = {
      RUN_ID: request.runId,
      PROFILE_BUCKET: request.profile.bucket ?? '',
      PROFILE_KEY: request.profile.key,
      PROFILE_VERSION_ID: request.profile.versionId ?? '',
      PROFILE_DIGEST: request.profileDigest,
      BASE_IMAGE_ID: request.baseImageId,
    };
    const output = await throttleAware('StartBuild', () =>
      this.codebuild.send(
        new StartBuildCommand({
          projectName: this.projectName,
          idempotencyToken: token,
          environmentVariablesOverride: Object.entries(variables).map(
            ([name, value]) => ({ name, value, type: 'PLAINTEXT' }),
          ),
        }),
      ),
    );
    const buildId = output.build?.id;
    if (buildId === undefined) {
      throw new PipelineError('StartBuild returned no build id');
    }
    return { buildId };
  }

  async get(buildId: string): Promise<BuildState> {
    const output = await throttleAware('BatchGetBuilds', () =>
      this.codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] })),
    );
    const build = output.builds?.[0];
    if (build === undefined) {
      throw new PipelineError(`build ${buildId} not found`, {
        data: { buildsNotFound: output.buildsNotFound },
      });
    }
    return {
      buildId,
      status: build.buildStatus ?? 'UNKNOWN',
      phase: build.currentPhase ?? 'UNKNOWN',
      startedAt: build.startTime?.toISOString(),
      endedAt: build.endTime?.toISOString(),
      artifactsLocation: build.artifacts?.location,
    };
  }

  async stop(buildId: string): Promise<void> {
    const build = await this.get(buildId);
    if (build.status !== 'IN_PROGRESS') {
      return;
    }
    await throttleAware('StopBuild', () =>
      this.codebuild.send(new StopBuildCommand({ id: buildId })),
    );
  }

  async readManifest(
    artifactsLocation: string,
  ): Promise<ManifestEntry[] | undefined> {
    const { bucket, key } = manifestObject(artifactsLocation);
    let text: string;
    try {
      const output = await throttleAware('GetObject', () =>
        this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })),
      );
      text = (await output.Body?.transformToString()) ?? '';
    } catch (error) {
      if (error instanceof Error && error.name === 'NoSuchKey') {
        return undefined;
      }
      throw error;
    }
    return parseManifest(text, `s3://${bucket}/${key}`);
  }
}

/** Where the manifest of a build is: `arn:aws:s3:::bucket/path` + file. */
export function manifestObject(artifactsLocation: string): {
  bucket: string;
  key: string;
} {
  const path = artifactsLocation.replace(/^arn:aws[a-z-]*:s3:::/, '');
  const slash = path.indexOf('/');
  if (slash <= 0) {
    throw new PipelineError(
      `artifacts location ${artifactsLocation} is not an S3 object path`,
    );
  }
  const prefix = path.slice(slash + 1).replace(/\/+$/, '');
  return {
    bucket: path.slice(0, slash),
    key: prefix.length === 0 ? MANIFEST_FILE : `${prefix}/${MANIFEST_FILE}`,
  };
}

/** The entries of a Packer manifest file. */
export function parseManifest(text: string, source: string): ManifestEntry[] {
  let manifest: PackerManifest;
  try {
    manifest = JSON.parse(text) as PackerManifest;
  } catch (error) {
    throw new PipelineError(`${source} is not valid JSON`, { cause: error });
  }
  return (manifest.builds ?? []).map((build) => ({
    name: build.name ?? '',
    builderType: build.builder_type ?? '',
    buildTime: build.build_time ?? 0,
    artifactId: build.artifact_id ?? '',
    packerRunUuid: build.packer_run_uuid ?? '',
    customData: build.custom_data ?? {},
  }));
}

/** The CodeBuild runner of the deployed stack, from its environment. */
export function codeBuildRunnerFromEnv(): CodeBuildRunner {
  const config = readConfig(z.object({ CODEBUILD_PROJECT: z.string().min(1) }));
  return new CodeBuildRunner(
    new CodeBuildClient({}),
    new S3Client({}),
    config.CODEBUILD_PROJECT,
  );
}
