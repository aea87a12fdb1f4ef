import { z } from 'zod';
import { TAG_VALIDATED } from '../constants.ts';
import { isThrottling, PublishError } from '../errors.ts';
import type { ImageStore, Publisher, PublishResult } from '../ports.ts';

export const PublishInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  imageId: z.string().min(1),
  profileName: z.string().min(1),
});

export type PublishInput = z.infer<typeof PublishInputSchema>;

export interface PublishDeps {
  readonly images: ImageStore;
  readonly publisher: Publisher;
}

/**
 * Marks the image validated, then points the profile's published value
 * (SSM parameter, launch template) at it. Only a smoke-tested, signed image
 * reaches this step.
 */
export async function publishImage(
  input: PublishInput,
  deps: PublishDeps,
): Promise<PublishResult> {
  try {
    await deps.images.tagImage(input.imageId, {
      [TAG_VALIDATED]: 'true',
    });
    return await deps.publisher.publish({
      runId: input.runId,
      imageId: input.imageId,
      profileName: input.profileName,
      description: `${input.profileName} run ${input.runId}`,
    });
  } catch (error) {
    if (isThrottling(error) || error instanceof PublishError) {
      throw error;
    }
    throw new PublishError(`publishing ${input.imageId} failed`, {
      cause: error,
      data: { imageId: input.imageId },
    });
  }
}
