import { readFile, stat } from 'node:fs/promises';
import { InvalidInputError } from '../errors.ts';
import type { ProfileRef, ProfileSource } from '../ports.ts';
import { MAX_PROFILE_BYTES } from '../profile/index.ts';

/** SIP profiles as files on this machine: `key` is the file's path. */
export class LocalProfileSource implements ProfileSource {
  async read(ref: ProfileRef): Promise<{ body: Uint8Array }> {
    if (ref.bucket !== undefined || ref.versionId !== undefined) {
      throw new InvalidInputError(
        `profile: a local profile is a file path in key, without bucket ` +
          `or versionId (got bucket ${ref.bucket ?? '-'}, versionId ` +
          `${ref.versionId ?? '-'})`,
      );
    }
    try {
      const info = await stat(ref.key);
      if (!info.isFile()) {
        throw new InvalidInputError(`profile ${ref.key} is not a file`);
      }
      if (info.size > MAX_PROFILE_BYTES) {
        throw new InvalidInputError(
          `profile ${ref.key} is ${info.size} bytes; a profile is at most ` +
            `${MAX_PROFILE_BYTES}`,
        );
      }
      return { body: await readFile(ref.key) };
    } catch (error) {
      if (error instanceof InvalidInputError) {
        throw error;
      }
      const code = (error as NodeJS.ErrnoException).code;
      throw new InvalidInputError(
        `profile ${ref.key} cannot be read (${code ?? describe(error)})`,
        { cause: error },
      );
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
