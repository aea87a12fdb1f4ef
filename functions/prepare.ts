import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { profileSourceFromEnv } from './lib/aws/profile-source.ts';
import { lazy } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type PrepareDeps,
  PrepareInputSchema,
  type ProfileFacts,
  prepare,
} from './lib/pipeline/prepare.ts';
import { settingsFromEnv } from './lib/pipeline/settings.ts';
import { parseProfileBytes } from './lib/profile/parse.ts';

/** The profile facts the run carries, from the validated profile. */
export function profileFacts(body: Uint8Array, source: string): ProfileFacts {
  const profile = parseProfileBytes(body, source);
  return { name: profile.name, fqdn: profile.sbc.fqdn };
}

/** Prepare: validate the trigger and profile, run id, base image. */
export const prepareHandler = (deps: () => PrepareDeps) =>
  taskHandler(PrepareInputSchema, (input) => prepare(input, deps()));

export const handler = prepareHandler(
  lazy(() => ({
    profiles: profileSourceFromEnv(),
    parseProfile: profileFacts,
    images: imageStoreFromEnv(),
    settings: settingsFromEnv(),
    now: () => new Date(),
  })),
);
