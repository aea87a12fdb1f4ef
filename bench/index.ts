/**
 * `npm run bench`: every benchmark of the project, one after the other,
 * printing figures. Nothing here passes or fails; a name on the command line
 * runs that benchmark alone (`npm run bench -- probe`).
 */
// The handlers' JSON logs are for CloudWatch; the figures are what counts.
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

const BENCHMARKS = ['pipeline', 'probe', 'retention', 'local'] as const;

const wanted = process.argv.slice(2);
const unknown = wanted.filter(
  (name) => !(BENCHMARKS as readonly string[]).includes(name),
);
if (unknown.length > 0) {
  // A typo must not pass for a run that measured nothing.
  console.error(
    `bench: no benchmark ${unknown.map((name) => `"${name}"`).join(', ')}; ` +
      `known: ${BENCHMARKS.join(', ')}`,
  );
  process.exit(2);
}
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
