import { z } from 'zod';
import { TAG_VALIDATED } from '../constants.ts';
import {
  describeError,
  isThrottling,
  PublishError,
  ThrottledError,
} from '../errors.ts';
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
 * reaches this step. The publisher publishes all or nothing; its errors
 * already say what failed and what was rolled back, and pass unchanged.
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
    if (error instanceof ThrottledError || error instanceof PublishError) {
      throw error;
    }
    const data = { imageId: input.imageId };
    if (isThrottling(error)) {
      // Only the name ThrottledError is retried by the state machine.
      throw new ThrottledError(
        `publishing ${input.imageId} was throttled: ${describeError(error)}`,
        { cause: error, data },
      );
    }
    // Lambda reports an error's name and message only, never its cause:
    // the message must carry it to the failure notice.
    throw new PublishError(
      `publishing ${input.imageId} failed: ${describeError(error)}`,
      { cause: error, data },
    );
  }
}
