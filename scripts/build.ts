/**
 * `npm run build`: one bundle per Lambda handler, in
 * dist/functions/<name>/index.mjs (and its source map), built with the
 * options `serverless package` uses (scripts/esbuild-options.ts).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { handlerBuildOptions } from './esbuild-options.ts';

const ROOT = resolve(import.meta.dirname, '..');
const FUNCTIONS = join(ROOT, 'functions');
export const DIST = join(ROOT, 'dist', 'functions');

/** Handler files: every functions/*.ts except the local-mode registry. */
export async function handlerFiles(): Promise<string[]> {
  const entries = await readdir(FUNCTIONS);
  return entries
    .filter((name) => name.endsWith('.ts') && name !== 'tasks.ts')
    .sort()
    .map((name) => join(FUNCTIONS, name));
}

export interface BundleResult {
  readonly name: string;
  readonly file: string;
  /** Size of the bundle, without its source map. */
  readonly bytes: number;
}

/** Bundles every handler; resolves to each bundle's path and size. */
export async function bundleHandlers(): Promise<BundleResult[]> {
  await rm(DIST, { recursive: true, force: true });
  const results: BundleResult[] = [];
  for (const entry of await handlerFiles()) {
    const name = basename(entry, '.ts');
    const outfile = join(DIST, name, 'index.mjs');
    await build({ ...handlerBuildOptions, entryPoints: [entry], outfile });
    const { size: bytes } = await stat(outfile);
    results.push({ name, file: outfile, bytes });
  }
  return results;
}

if (import.meta.main) {
  const results = await bundleHandlers();
  for (const result of results) {
    console.log(
      `${result.name.padEnd(26)} ${(result.bytes / 1024).toFixed(1).padStart(7)} KB`,
    );
  }
}
