import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { publisherFromEnv } from './lib/aws/publisher.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type DiscardDeps,
  DiscardInputSchema,
  discardRunImage,
} from './lib/pipeline/rollback.ts';

/**
 * DiscardImage (failure path): deregister, then delete its snapshots;
 * an image still published or named by a launch template is left.
 */
export const discardImageHandler = (deps: () => DiscardDeps) =>
  taskHandler(DiscardInputSchema, (input) => discardRunImage(input, deps()));

export const handler = discardImageHandler(
  lazy(() => ({ images: imageStoreFromEnv(), publisher: publisherFromEnv() })),
);
