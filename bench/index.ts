/**
 * `npm run bench`: every benchmark of the project, one after the other,
 * printing figures. Nothing here passes or fails; a name on the command line
 * runs that benchmark alone (`npm run bench -- probe`).
 */
// The handlers' JSON logs are for CloudWatch; the figures are what counts.
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

const BENCHMARKS = ['pipeline', 'probe', 'retention', 'local'] as const;

const wanted = process.argv.slice(2);
for (const name of BENCHMARKS) {
  if (wanted.length > 0 && !wanted.includes(name)) {
    continue;
  }
  console.log(`\n=== ${name} ===`);
  const module = (await import(`./${name}.ts`)) as {
    bench: () => Promise<void>;
  };
  await module.bench();
}
