import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { isAlive, rootIsUnder } from '../../functions/lib/local/command.ts';
import { REPO_ROOT } from '../../functions/lib/local/deps.ts';
import {
  listLinks,
  listNamespaces,
  RESERVATIONS_DIR,
} from '../../functions/lib/local/netns.ts';
import {
  type LocalPaths,
  localPaths,
} from '../../functions/lib/local/paths.ts';
import type { LocalPipelineResult } from '../../functions/lib/local/pipeline.ts';
import { mountsUnder } from '../../functions/lib/local/rootfs.ts';
import { runWorkDir } from '../../functions/lib/local/run-context.ts';

/**
 * The debootstrap base and packages, shared by every local run of the test
 * suite (and kept between suites): only the first run of a fresh checkout
 * pays for debootstrap and the downloads.
 */
export const SHARED_CACHE = join(REPO_ROOT, '.cache');

export const EXAMPLE_PROFILE = join(
  REPO_ROOT,
  'examples',
  'profiles',
  'genesys-byoc.json',
);

/** A full local run: a build, a test host, Kamailio starting. */
export const RUN_TIMEOUT_MS = 15 * 60_000;

/** A local home of its own for one test file. */
export async function temporaryHome(): Promise<LocalPaths> {
  return localPaths(await mkdtemp(join(tmpdir(), 'sbc-ami-local-')));
}

export async function removeHome(paths: LocalPaths | undefined) {
  if (paths !== undefined) {
    await rm(paths.home, { recursive: true, force: true });
  }
}

/**
 * Asserts that the run left nothing on the machine: its namespace and
 * veth, mounts under the home, its work folder, processes it recorded,
 * its /30 reservation.
 */
export async function expectNothingLeft(
  paths: LocalPaths,
  result: LocalPipelineResult,
): Promise<void> {
  expect(result.leftBehind).toEqual([]);
  const network = result.network;
  expect(network).toBeDefined();
  if (network !== undefined) {
    expect(await listNamespaces()).not.toContain(network.namespace);
    expect(await listLinks()).not.toContain(network.hostLink);
  }
  expect(await mountsUnder(paths.home)).toEqual([]);
  const workDir = runWorkDir(paths, result.runId);
  expect(existsSync(workDir)).toBe(false);
  for (const host of result.hosts) {
    for (const pid of host.pids) {
      // Gone, or the pid now belongs to a process outside the run.
      const ours = isAlive(pid) && (await rootIsUnder(pid, workDir));
      expect(ours, `process ${pid} of ${host.instanceId}`).toBe(false);
    }
  }
  expect(await reservationsOf(result.runId)).toEqual([]);
}

/** Reservation files that name the run. */
export async function reservationsOf(runId: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(RESERVATIONS_DIR);
  } catch {
    return [];
  }
  const held: string[] = [];
  for (const name of names) {
    try {
      const text = await readFile(join(RESERVATIONS_DIR, name), 'utf8');
      if ((JSON.parse(text) as { runId?: string }).runId === runId) {
        held.push(name);
      }
    } catch {
      // released meanwhile
    }
  }
  return held;
}

/** The registry file's content, or undefined when nothing was published. */
export async function readRegistry(paths: LocalPaths): Promise<unknown> {
  try {
    return JSON.parse(await readFile(paths.registry, 'utf8'));
  } catch {
    return undefined;
  }
}
