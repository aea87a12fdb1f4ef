import { join } from 'node:path';
import type { HostNetwork } from './netns.ts';
import type { LocalPaths } from './paths.ts';

/**
 * One local run as its adapters see it. The adapters of local mode are made
 * per run: each knows its scratch folder, where its logs go and the /30
 * its test host uses (the image is rendered to admit that host side).
 */
export interface LocalRun {
  readonly paths: LocalPaths;
  readonly runId: string;
  /**
   * Scratch space, `work/RUN_ID`: removed when the run ends. While it
   * exists, retention takes the run as still building and keeps its image.
   */
  readonly workDir: string;
  /** Logs, manifest and notification of the run, kept: `runs/RUN_ID`. */
  readonly recordDir: string;
  /** Survives runs: the debootstrap base and downloaded packages. */
  readonly cacheDir: string;
  readonly network: HostNetwork;
  /** Aborted when the run is interrupted; adapters start nothing new then. */
  readonly signal?: AbortSignal;
  /** Short lines for a person watching the run. */
  readonly progress: (line: string) => void;
}

/** Where the records of a run are kept. */
export function runRecordDir(paths: LocalPaths, runId: string): string {
  return join(paths.home, 'runs', runId);
}

/** The run's scratch folder (the name retention checks). */
export function runWorkDir(paths: LocalPaths, runId: string): string {
  return join(paths.work, runId);
}

/** The throwaway CA the smoke test trusts, once the test host made it. */
export function testHostCaFile(workDir: string): string {
  return join(workDir, 'host', 'pki', 'ca.pem');
}
