/**
 * Local mode end to end, cold (an empty cache: debootstrap and every
 * package downloaded) and warm (the cache the cold run filled), each in a
 * home of its own: wall time per stage from the execution's state events,
 * the root filesystem build's steps, and the cleanup. Figures are printed,
 * never asserted.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Table from 'cli-table3';
import { LOCAL_MODE_TOOLS, REPO_ROOT } from '../functions/lib/local/deps.ts';
import { localPaths } from '../functions/lib/local/paths.ts';
import {
  type LocalPipelineResult,
  runLocalPipeline,
} from '../functions/lib/local/pipeline.ts';
import { cleanupRootfs } from '../functions/lib/local/rootfs.ts';
import { missingRequirements } from '../functions/lib/system/tools.ts';

const PROFILE = join(REPO_ROOT, 'examples', 'profiles', 'genesys-byoc.json');

/** Stages as a person names them, each the states of the definition in it. */
const STAGES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['prepare', ['Prepare']],
  ['build', ['StartBuild', 'WaitForBuild', 'CheckBuild', 'BuildReady']],
  [
    'image checks',
    ['ResolveImage', 'WaitForImage', 'CheckImage', 'ImageReady'],
  ],
  [
    'test host up',
    [
      'LaunchTestInstance',
      'WaitForTestInstance',
      'CheckTestInstance',
      'TestInstanceReady',
    ],
  ],
  ['smoke test', ['SmokeTest']],
  ['sign', ['Sign']],
  ['publish', ['Publish']],
  ['terminate test host', ['TerminateTestInstance']],
  ['retention cleanup', ['CleanupOrphans']],
  ['notify', ['NotifySuccess']],
];

export async function bench(): Promise<void> {
  const missing = missingRequirements({ root: true, tools: LOCAL_MODE_TOOLS });
  if (missing.length > 0) {
    console.log(`local: skipped, needs ${missing.join(', ')}`);
    return;
  }

  const scratch = await mkdtemp(join(tmpdir(), 'sbc-ami-bench-local-'));
  const cacheDir = join(scratch, 'cache');
  try {
    const cold = await measured('cold', scratch, cacheDir);
    const warm = await measured('warm', scratch, cacheDir);
    print(cold, warm);
  } finally {
    // The cache holds the debootstrap tree's device nodes: removed without
    // crossing into anything mounted.
    await cleanupRootfs(scratch);
  }
}

async function measured(
  label: string,
  scratch: string,
  cacheDir: string,
): Promise<LocalPipelineResult> {
  console.log(`  ${label} run...`);
  const result = await runLocalPipeline({
    profileFile: PROFILE,
    paths: localPaths(join(scratch, `home-${label}`)),
    cacheDir,
  });
  if (result.status !== 'SUCCEEDED') {
    throw new Error(
      `the ${label} run ended ${result.status}: ${result.cause ?? ''}`,
    );
  }
  return result;
}

function print(cold: LocalPipelineResult, warm: LocalPipelineResult): void {
  const seconds = (ms: number | undefined) =>
    ms === undefined ? '-' : (ms / 1000).toFixed(ms < 1000 ? 2 : 1);
  const table = new Table({
    head: ['stage', 'cold s', 'warm s'],
    colAligns: ['left', 'right', 'right'],
    style: { head: [], border: [] },
  });

  table.push([
    'base image (debootstrap, cached)',
    seconds(cold.timings.baseMs),
    seconds(warm.timings.baseMs),
  ]);
  for (const [stage, states] of STAGES) {
    table.push([
      stage,
      seconds(stageMs(cold, states)),
      seconds(stageMs(warm, states)),
    ]);
    if (stage === 'build') {
      const steps = new Set([
        ...Object.keys(cold.timings.rootfs),
        ...Object.keys(warm.timings.rootfs),
      ]);
      for (const step of steps) {
        table.push([
          `  ${step}`,
          seconds(cold.timings.rootfs[step]),
          seconds(warm.timings.rootfs[step]),
        ]);
      }
    }
  }
  table.push([
    'cleanup after the execution',
    seconds(cold.timings.cleanupMs),
    seconds(warm.timings.cleanupMs),
  ]);
  table.push([
    'total',
    seconds(cold.timings.totalMs),
    seconds(warm.timings.totalMs),
  ]);
  console.log(table.toString());
  const checks = (result: LocalPipelineResult) =>
    result.timings.states.find((s) => s.state === 'CheckBuild')?.entries ?? 0;
  console.log(
    `  build checks (each waits up to 10 s for news): ${checks(cold)} cold, ` +
      `${checks(warm)} warm`,
  );
}

function stageMs(
  result: LocalPipelineResult,
  states: readonly string[],
): number | undefined {
  const timed = result.timings.states.filter((s) => states.includes(s.state));
  return timed.length === 0
    ? undefined
    : timed.reduce((sum, s) => sum + s.ms, 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await bench();
}
