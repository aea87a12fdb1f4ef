import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BaseImageRejectedError, InvalidInputError } from '../errors.ts';
import { globToRegExp } from '../glob.ts';
import type { ImageStore, ProfileSource } from '../ports.ts';
import {
  ExecutionInputSchema,
  type ProfileRef,
  ProfileRefSchema,
  runIdentity,
} from './run-id.ts';
import type { PipelineSettings } from './settings.ts';

export const PrepareInputSchema = ExecutionInputSchema.extend({
  execution: z.string().min(1),
});

/** What every later step needs to know about the run: small and fixed. */
export const RunContextSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  source: z.string().min(1),
  startedAt: z.iso.datetime(),
  profileName: z.string().min(1),
  profile: ProfileRefSchema.extend({ digest: z.string().length(64) }),
  fqdn: z.string().min(1),
  baseImageId: z.string().min(1),
  baseImageName: z.string(),
});

export type PrepareInput = z.infer<typeof PrepareInputSchema>;
export type RunContext = z.infer<typeof RunContextSchema>;

/** The few facts of a SIP profile the pipeline itself needs. */
export interface ProfileFacts {
  readonly name: string;
  readonly fqdn: string;
}

export interface PrepareDeps {
  readonly profiles: ProfileSource;
  /** Validates the profile's bytes; throws an error naming the field. */
  readonly parseProfile: (body: Uint8Array, source: string) => ProfileFacts;
  readonly images: ImageStore;
  readonly settings: PipelineSettings;
  readonly now: () => Date;
}

/**
 * Validates the trigger and the profile, derives the run id from the
 * trigger, and resolves the base image, refusing one whose owner or name
 * is not allowed.
 */
export async function prepare(
  input: PrepareInput,
  deps: PrepareDeps,
): Promise<RunContext> {
  const identity = runIdentityOrReject(input);

  const { body, versionId } = await deps.profiles.read(input.profile);
  const facts = deps.parseProfile(body, describeRef(input.profile));

  const base = await resolveBaseImage(deps);

  return {
    runId: identity.runId,
    execution: input.execution,
    source: input.trigger.source,
    startedAt: deps.now().toISOString(),
    profileName: facts.name,
    profile: {
      ...input.profile,
      ...(versionId === undefined ? {} : { versionId }),
      digest: createHash('sha256').update(body).digest('hex'),
    },
    fqdn: facts.fqdn,
    baseImageId: base.imageId,
    baseImageName: base.name,
  };
}

function runIdentityOrReject(input: PrepareInput) {
  try {
    return runIdentity(input);
  } catch (error) {
    throw new InvalidInputError((error as Error).message, { cause: error });
  }
}

/**
 * The newest available image over every allowed owner and name pattern.
 * The answer is checked again, so an image listed under an allowed owner
 * but owned by another account, or named otherwise, is still refused.
 */
async function resolveBaseImage(deps: PrepareDeps) {
  const { allowedOwners, allowedNames } = deps.settings.baseImage;
  if (allowedOwners.length === 0 || allowedNames.length === 0) {
    throw new BaseImageRejectedError('no allowed base image owner or name');
  }

  const found = await Promise.all(
    allowedOwners.flatMap((owner) =>
      allowedNames.map((pattern) =>
        deps.images.findLatestImage(owner, pattern),
      ),
    ),
  );
  const image = found
    .filter((candidate) => candidate !== undefined)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  if (image === undefined) {
    throw new BaseImageRejectedError(
      `no available base image of owner ${allowedOwners.join(' or ')} ` +
        `named ${allowedNames.join(' or ')}`,
    );
  }
  if (!allowedOwners.includes(image.ownerId)) {
    throw new BaseImageRejectedError(
      `base image ${image.imageId} is owned by ${image.ownerId}, ` +
        `not one of ${allowedOwners.join(', ')}`,
    );
  }
  if (!allowedNames.some((name) => globToRegExp(name).test(image.name))) {
    throw new BaseImageRejectedError(
      `base image ${image.imageId} is named ${image.name}, ` +
        `which matches none of ${allowedNames.join(', ')}`,
    );
  }
  return image;
}

/** `s3://bucket/key?versionId=v` or the local path, for messages. */
export function describeRef(ref: ProfileRef): string {
  if (ref.bucket === undefined) {
    return ref.key;
  }
  const version =
    ref.versionId === undefined ? '' : `?versionId=${ref.versionId}`;
  return `s3://${ref.bucket}/${ref.key}${version}`;
}
