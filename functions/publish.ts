import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { publisherFromEnv } from './lib/aws/publisher.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type PublishDeps,
  PublishInputSchema,
  publishImage,
} from './lib/pipeline/publish.ts';

/** Publish: tag validated, SSM parameter, launch template version. */
export const publishHandler = (deps: () => PublishDeps) =>
  taskHandler(PublishInputSchema, (input) => publishImage(input, deps()));

export const handler = publishHandler(
  lazy(() => ({ images: imageStoreFromEnv(), publisher: publisherFromEnv() })),
);
