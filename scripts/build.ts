/**
 * `npm run build`: one minified ESM bundle per Lambda handler, in
 * dist/functions/<name>/index.mjs. The AWS SDK v3 stays external: the
 * nodejs22.x runtime provides it, and bundling the EC2 client alone would
 * pass a megabyte.
 */
import { readdir, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';

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

/**
 * Zod's namespace re-exports every locale's messages (about 250 KB) and so
 * defeats tree shaking; the handlers speak English only, so the locale
 * table resolves to English alone.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes('/node_modules/zod/')
        ? { path: 'zod-locales', namespace: 'zod-english-only' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, () => ({
      contents: "export { default as en } from 'zod/v4/locales/en.js';",
      resolveDir: ROOT,
      loader: 'js',
    }));
  },
};

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
      plugins: [zodEnglishOnly],
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
