/**
 * `npm run build`: one minified ESM bundle per Lambda handler, in
 * dist/functions/<name>/index.mjs. The AWS SDK v3 stays external: the
 * nodejs22.x runtime provides it, and bundling the EC2 client alone would
 * pass a megabyte.
 */
import { readdir, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build } from 'esbuild';

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
  readonly bytes: number;
}

/** Bundles every handler; resolves to each bundle's path and size. */
export async function bundleHandlers(): Promise<BundleResult[]> {
  await rm(DIST, { recursive: true, force: true });
  const results: BundleResult[] = [];
  for (const entry of await handlerFiles()) {
    const name = basename(entry, '.ts');
    const outfile = join(DIST, name, 'index.mjs');
    const output = await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      minify: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      sourcemap: false,
      metafile: true,
      external: ['@aws-sdk/*'],
      // Some CommonJS dependencies call require(); ESM has none of its own.
      banner: {
        js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
      },
      logLevel: 'warning',
    });
    const bytes =
      output.metafile.outputs[Object.keys(output.metafile.outputs)[0] ?? '']
        ?.bytes;
    results.push({ name, file: outfile, bytes: bytes ?? 0 });
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
