/**
 * How every Lambda handler is bundled, for both builds that bundle one:
 * `npm run build` (scripts/build.ts, measured by `npm run bench`) and
 * `serverless package`, whose serverless-esbuild plugin loads this file
 * through `custom.esbuild.config` in serverless.yml.
 */
import { dirname, relative, resolve } from 'node:path';
import type { BuildOptions, Plugin } from 'esbuild';

/**
 * Packages the nodejs22.x runtime provides (AWS SDK v3): imported from the
 * runtime, never bundled nor packaged. Bundling the EC2 client alone would
 * pass a megabyte per function.
 */
export const RUNTIME_PACKAGES: readonly string[] = ['@aws-sdk/*'];

/**
 * Zod's namespace re-exports every locale's messages (about 250 KB) and so
 * defeats tree shaking; the handlers speak English only, so the locale
 * table resolves to English alone, taken from the same zod copy.
 */
export const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(build) {
    // Paths relative to the working directory: the source maps, and so the
    // packages, stay the same whichever folder they are built in.
    const root = build.initialOptions.absWorkingDir ?? process.cwd();
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes('/node_modules/zod/')
        ? {
            path: relative(root, resolve(args.resolveDir, args.path)),
            namespace: 'zod-english-only',
          }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(resolve(root, args.path)),
      loader: 'js',
    }));
  },
};

/** The esbuild options of a handler bundle, less its entry and output. */
export const handlerBuildOptions = {
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  // Linked maps for stack traces (NODE_OPTIONS=--enable-source-maps);
  // positions are enough there, so the sources stay out of the package.
  sourcemap: 'linked',
  sourcesContent: false,
  external: [...RUNTIME_PACKAGES],
  // Some CommonJS dependencies call require(); ESM has none of its own.
  banner: {
    js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
  },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
} satisfies BuildOptions;

/**
 * serverless-esbuild's settings: the handler options plus the plugin's
 * own. Excluding the runtime's packages as well keeps the plugin from
 * installing them: no function's zip holds a node_modules folder.
 */
function serverlessEsbuildConfig() {
  return {
    ...handlerBuildOptions,
    exclude: [...RUNTIME_PACKAGES],
    outputFileExtension: '.mjs',
  };
}

// serverless-esbuild loads the config file with require() and calls what
// it returns; this name makes Node's require() of an ES module return it.
export { serverlessEsbuildConfig as 'module.exports' };
