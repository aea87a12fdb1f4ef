import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  DiscardInputSchema,
  discardRunImage,
} from './lib/pipeline/rollback.ts';
import type { ImageStore } from './lib/ports.ts';

/** DiscardImage (failure path): deregister, then delete its snapshots. */
export const discardImageHandler = (deps: () => { images: ImageStore }) =>
  taskHandler(DiscardInputSchema, (input) => discardRunImage(input, deps()));

export const handler = discardImageHandler(
  lazy(() => ({ images: imageStoreFromEnv() })),
);
