/**
 * The local registry: what the SSM parameter and the launch template are
 * on AWS, as one JSON file. Each profile has its current image and the
 * history of every image published for it, newest first.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import pRetry from 'p-retry';
import { z } from 'zod';
import { PublishError } from '../errors.ts';
import type { Publisher, PublishRequest, PublishResult } from '../ports.ts';
import { writeJsonFile } from './json-file.ts';

const EntrySchema = z.strictObject({
  imageId: z.string().min(1),
  runId: z.string().min(1),
  publishedAt: z.iso.datetime(),
  description: z.string(),
});

const RegistrySchema = z.strictObject({
  profiles: z.record(
    z.string(),
    z.strictObject({
      current: z.string().min(1),
      /** Newest first; `history[0]` is `current`. */
      history: z.array(EntrySchema),
    }),
  ),
});

export type Registry = z.infer<typeof RegistrySchema>;
export type RegistryEntry = z.infer<typeof EntrySchema>;

export class LocalRegistryPublisher implements Publisher {
  readonly file: string;
  readonly #signal?: AbortSignal;
  readonly #now: () => Date;

  constructor(
    file: string,
    options: { signal?: AbortSignal; now?: () => Date } = {},
  ) {
    this.file = file;
    this.#signal = options.signal;
    this.#now = options.now ?? (() => new Date());
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    // An interrupted run publishes nothing it has not published yet.
    this.#signal?.throwIfAborted();
    const entry: RegistryEntry = {
      imageId: request.imageId,
      runId: request.runId,
      publishedAt: this.#now().toISOString(),
      description: request.description,
    };
    const version = await this.#locked(async () => {
      const registry = await this.read();
      const history = [
        entry,
        ...(registry.profiles[request.profileName]?.history ?? []),
      ];
      registry.profiles[request.profileName] = {
        current: request.imageId,
        history,
      };
      await writeJsonFile(this.file, registry);
      return history.length;
    });

    const written = await this.read();
    if (written.profiles[request.profileName]?.current !== request.imageId) {
      throw new PublishError(
        `${this.file} does not hold ${request.imageId} for ` +
          `${request.profileName} after writing it`,
      );
    }
    return {
      parameterName: request.profileName,
      parameterVersion: version,
      location: this.location(request.profileName),
    };
  }

  async history(profileName: string): Promise<string[]> {
    const registry = await this.read();
    return (registry.profiles[profileName]?.history ?? []).map(
      (entry) => entry.imageId,
    );
  }

  /** The profile's entry in the registry, as a URL a person can open. */
  location(profileName: string): string {
    const url = pathToFileURL(this.file);
    url.hash = profileName;
    return url.href;
  }

  /** The registry; empty when no image was ever published. */
  async read(): Promise<Registry> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { profiles: {} };
      }
      throw error;
    }
    const parsed = RegistrySchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => i.path.join('.'));
      throw new PublishError(
        `${this.file} is not a local registry (${fields.join(', ')})`,
      );
    }
    return parsed.data;
  }

  /**
   * Runs `work` holding an exclusive lock file beside the registry, so two
   * runs of the same home never lose each other's publish.
   */
  async #locked<T>(work: () => Promise<T>): Promise<T> {
    const lock = `${this.file}.lock`;
    await mkdir(dirname(this.file), { recursive: true });
    const handle = await pRetry(() => open(lock, 'wx'), {
      retries: 50,
      minTimeout: 20,
      maxTimeout: 200,
    }).catch((error: unknown) => {
      throw new PublishError(
        `cannot lock ${lock}: remove it if no run is publishing`,
        { cause: error },
      );
    });
    try {
      return await work();
    } finally {
      await handle.close();
      await rm(lock, { force: true });
    }
  }
}
