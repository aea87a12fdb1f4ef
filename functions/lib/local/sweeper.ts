/**
 * Removes what a local run left on this machine, found by the run id
 * alone: processes chrooted in its work folder, its network namespace and
 * veth (named from the run id), mounts under its work folder, the folder
 * itself and its /30 reservation; for a run whose process is gone, also
 * the images it made and never published. Only names local mode gives are
 * touched.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describeError } from '../errors.ts';
import type { LeftoverSweeper, SweepReport } from '../ports.ts';
import { endProcessesUnder, isAlive } from './command.ts';
import { LocalImageStore } from './image-store.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';
import {
  networkNames,
  RESERVATIONS_DIR,
  releaseNetwork,
  removeNetwork,
} from './netns.ts';
import type { LocalPaths } from './paths.ts';
import { LocalRegistryPublisher } from './publisher.ts';
import { cleanupRootfs, mountsUnder } from './rootfs.ts';
import { runWorkDir } from './run-context.ts';
import { discardUnpublished } from './unpublished.ts';

/** Written first into a run's work folder: which process owns the run. */
export const OWNER_FILE = 'owner.json';

const OwnerSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
});

/** A folder without an owner file younger than this may be a run starting. */
const STARTING_GRACE_MS = 60_000;

export class LocalLeftoverSweeper implements LeftoverSweeper {
  readonly paths: LocalPaths;
  readonly reservationsDir: string;

  constructor(paths: LocalPaths, reservationsDir = RESERVATIONS_DIR) {
    this.paths = paths;
    this.reservationsDir = reservationsDir;
  }

  /** Never throws: what cannot be removed is named in `leftBehind`. */
  async sweep(runId: string): Promise<SweepReport> {
    const removed: string[] = [];
    const leftBehind: string[] = [];
    const workDir = runWorkDir(this.paths, runId);
    const attempt = async (what: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        leftBehind.push(`${what}: ${describeError(error)}`);
      }
    };

    await attempt(`processes in ${workDir}`, async () => {
      const { ended, survivors } = await endProcessesUnder(workDir);
      removed.push(...ended.map((pid) => `process ${pid}`));
      leftBehind.push(
        ...survivors.map((pid) => `process ${pid} (kill -9 ${pid})`),
      );
    });
    await attempt('network', async () => {
      const network = await removeNetwork(networkNames(runId));
      removed.push(...network.removed);
      leftBehind.push(...network.leftBehind);
    });
    await attempt(`work folder ${workDir}`, async () => {
      const mounts = await mountsUnder(workDir);
      if (mounts.length > 0 || (await exists(workDir))) {
        await cleanupRootfs(workDir);
        removed.push(...mounts.map((mount) => `mount ${mount}`));
        removed.push(`folder ${workDir}`);
      }
    });
    await attempt('address reservation', async () => {
      if (await releaseNetwork(runId, this.reservationsDir)) {
        removed.push(`reservation of the /30 of ${runId}`);
      }
    });
    return { removed, leftBehind };
  }

  /**
   * Sweeps the runs of this home whose process is gone (killed, quit at
   * once, or the machine rebooted): their work folder says which process
   * owned them. Their images that never reached the registry and were not
   * validated are discarded first, while the work folder still marks the
   * run; the retention policy decides about validated ones.
   */
  async sweepStale(): Promise<SweepReport & { runs: string[] }> {
    const runs: string[] = [];
    const removed: string[] = [];
    const leftBehind: string[] = [];
    let entries: string[];
    try {
      entries = await readdir(this.paths.work);
    } catch {
      return { runs, removed, leftBehind };
    }
    for (const runId of entries) {
      const dir = runWorkDir(this.paths, runId);
      if (!(await isStale(dir))) {
        continue;
      }
      runs.push(runId);
      for (const report of [
        await this.#discardImages(runId),
        await this.sweep(runId),
      ]) {
        removed.push(...report.removed);
        leftBehind.push(...report.leftBehind);
      }
    }
    return { runs, removed, leftBehind };
  }

  async #discardImages(runId: string): Promise<SweepReport> {
    try {
      return await discardUnpublished(
        new LocalImageStore(this.paths),
        new LocalRegistryPublisher(this.paths.registry),
        runId,
        { keepValidated: true },
      );
    } catch (error) {
      return {
        removed: [],
        leftBehind: [`images of run ${runId}: ${describeError(error)}`],
      };
    }
  }
}

/** Marks the run's work folder as this process's, for `sweepStale`. */
export async function claimWorkDir(workDir: string): Promise<void> {
  await writeJsonFile(join(workDir, OWNER_FILE), {
    pid: process.pid,
    startedAt: new Date().toISOString(),
  });
}

async function isStale(dir: string): Promise<boolean> {
  let owner: unknown;
  try {
    owner = await readJsonFile(join(dir, OWNER_FILE));
  } catch {
    owner = undefined;
  }
  const parsed = OwnerSchema.safeParse(owner);
  if (parsed.success) {
    return !isAlive(parsed.data.pid);
  }
  try {
    return Date.now() - (await stat(dir)).mtimeMs > STARTING_GRACE_MS;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
