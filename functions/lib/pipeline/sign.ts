import { z } from 'zod';
import {
  type AttestationStore,
  attestImage,
  type ContentReader,
  describeImage,
  type Signer,
} from '../attest/index.ts';
import {
  TAG_SOURCE_DIRTY,
  TAG_SOURCE_REVISION,
  TAG_TEMPLATE_DIGEST,
} from '../constants.ts';
import { ImageNotFoundError, SigningError } from '../errors.ts';
import type { ImageStore } from '../ports.ts';
import { describeRef, RunContextSchema } from './prepare.ts';

export const SignInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  imageId: z.string().min(1),
  buildId: z.string().min(1),
  run: RunContextSchema,
  /** The smoke test's report, signed as a byproduct of the build. */
  smoke: z.record(z.string(), z.unknown()),
});

export type SignInput = z.infer<typeof SignInputSchema>;

export interface SignDeps {
  readonly images: ImageStore;
  readonly signer: Signer;
  readonly attestations: AttestationStore;
  readonly region: string;
  /** This pipeline's version, named as the builder in the provenance. */
  readonly builderVersion: string;
  readonly now: () => Date;
  /**
   * Hashes an image's contents again before signing them; only images
   * made of files have one (local mode).
   */
  readonly contents?: ContentReader;
}

/**
 * Signs the image's provenance: what it is (id, region, snapshots), what
 * it was made from (profile, template, base image, source revision), how
 * (build, execution, times) and the smoke test it passed.
 */
export async function signImage(
  input: SignInput,
  deps: SignDeps,
): Promise<{ digest: string; location: string }> {
  const image = await deps.images.describeImage(input.imageId);
  if (image === undefined) {
    throw new ImageNotFoundError(`image ${input.imageId} does not exist`);
  }
  const tag = (key: string) => {
    const value = image.tags[key];
    if (value === undefined || value === '') {
      throw new SigningError(`image ${input.imageId} has no ${key} tag`, {
        data: { imageId: input.imageId, tag: key },
      });
    }
    return value;
  };

  // Recorded as the build saw it; a build that could not tell says nothing.
  const dirty = image.tags[TAG_SOURCE_DIRTY];
  const sourceDirty =
    dirty === undefined ? {} : { sourceDirty: dirty === 'true' };

  return attestImage({
    input: {
      subject: describeImage(image, deps.region),
      builderVersion: deps.builderVersion,
      profile: {
        location: describeRef(input.run.profile),
        versionId: input.run.profile.versionId,
        digest: input.run.profile.digest,
      },
      templateDigest: tag(TAG_TEMPLATE_DIGEST),
      sourceRevision: tag(TAG_SOURCE_REVISION),
      buildId: input.buildId,
      execution: input.execution,
      startedAt: input.run.startedAt,
      finishedAt: deps.now().toISOString(),
      internalParameters: {
        runId: input.runId,
        profileName: input.run.profileName,
        baseImageName: input.run.baseImageName,
        trigger: input.run.source,
        ...sourceDirty,
      },
      smokeReport: input.smoke,
    },
    signer: deps.signer,
    store: deps.attestations,
    images: deps.images,
    contents: deps.contents,
  });
}
