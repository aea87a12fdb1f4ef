import { codeBuildRunnerFromEnv } from './lib/aws/build-runner.ts';
import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  CheckImageInputSchema,
  checkImage,
  type ImageDeps,
} from './lib/pipeline/image.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** CheckImage: one look at the image and its snapshots, then the policy. */
export const checkImageHandler = (deps: () => ImageDeps) =>
  taskHandler(CheckImageInputSchema, (input) => checkImage(input, deps()));

export const handler = checkImageHandler(
  lazy(() => ({
    builds: codeBuildRunnerFromEnv(),
    images: imageStoreFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
