import { codeBuildRunnerFromEnv } from './lib/aws/build-runner.ts';
import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type ImageDeps,
  ResolveImageInputSchema,
  resolveImage,
} from './lib/pipeline/image.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';

/** ResolveImage: this run's image id from the build's Packer manifest. */
export const resolveImageHandler = (deps: () => ImageDeps) =>
  taskHandler(ResolveImageInputSchema, (input) => resolveImage(input, deps()));

export const handler = resolveImageHandler(
  lazy(() => ({
    builds: codeBuildRunnerFromEnv(),
    images: imageStoreFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
