/**
 * State transitions of the real definition for a successful run (15-minute
 * build, 10-minute image wait) and for each failure path; size and cold
 * module-load time of each bundled handler against the same handler
 * unbundled. Figures are printed, never asserted.
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { PipelineSettings } from '../functions/lib/pipeline/settings.ts';
import { runProbe } from '../functions/lib/probe/index.ts';
import { bundleHandlers, handlerFiles } from '../scripts/build.ts';
import {
  type Probe,
  runPipeline,
  SimulatedClock,
  unusedPort,
} from '../tests/pipeline/harness.ts';
import { AwsWorld } from '../tests/pipeline/world.ts';
import { startKamailio } from '../tests/support/kamailio.ts';
import { createPki } from '../tests/support/pki.ts';

const FQDN = 'sbc.example.com';

interface Scenario {
  readonly name: string;
  readonly arrange: (world: AwsWorld, clock: SimulatedClock) => void;
  readonly probe?: 'healthy' | 'failing';
}

/** CodeBuild reports SUCCEEDED once `minutes` of simulated time have passed. */
function buildTakes(world: AwsWorld, clock: SimulatedClock, minutes: number) {
  const start = clock.time;
  world.buildLookNow = () =>
    clock.time - start >= minutes * 60_000
      ? { status: 'SUCCEEDED', phase: 'COMPLETED' }
      : { status: 'IN_PROGRESS', phase: 'BUILD' };
}

/** The image is pending for `minutes` after its first look, then available. */
function imageTakes(world: AwsWorld, clock: SimulatedClock, minutes: number) {
  let firstLook: number | undefined;
  world.imageLookNow = () => {
    firstLook ??= clock.time;
    return {
      State:
        clock.time - firstLook >= minutes * 60_000 ? 'available' : 'pending',
    };
  };
}

const SCENARIOS: Scenario[] = [
  {
    name: 'success (15 min build, 10 min image)',
    arrange: (world, clock) => {
      buildTakes(world, clock, 15);
      imageTakes(world, clock, 10);
    },
    probe: 'healthy',
  },
  {
    name: 'build FAILED after 15 min',
    arrange: (world) => {
      world.buildLooks = [
        ...Array(5).fill({ status: 'IN_PROGRESS', phase: 'BUILD' }),
        { status: 'FAILED', phase: 'BUILD' },
      ];
    },
  },
  {
    name: 'build still running at its deadline',
    arrange: (world) => {
      world.buildLooks = [{ status: 'IN_PROGRESS', phase: 'BUILD' }];
    },
  },
  {
    name: 'image failed',
    arrange: (world) => {
      world.imageLooks = [{ State: 'failed' }];
    },
  },
  {
    name: 'image not encrypted',
    arrange: (world) => {
      world.imageLooks = [{ State: 'available', ImdsSupport: undefined }];
    },
  },
  {
    name: 'test instance terminated',
    arrange: (world) => {
      world.instanceLooks = [{ state: 'terminated', checks: 'not-applicable' }];
    },
  },
  {
    name: 'smoke test failed',
    arrange: () => undefined,
    probe: 'failing',
  },
];

async function transitions(): Promise<void> {
  const pki = await createPki();
  const leaf = await pki.issueLeaf('sbc', { commonName: FQDN });
  const tls = { certificateFile: leaf.chainFile, privateKeyFile: leaf.keyFile };
  const healthy = await startKamailio({ tls, aliases: [FQDN] });
  const failing = await startKamailio({
    tls,
    aliases: [FQDN],
    route: 'sl_send_reply("404", "Not Found");',
  });
  const closedPort = await unusedPort();
  try {
    console.log('\nState transitions (aim: under 100 on success)');
    console.log(
      `${'scenario'.padEnd(40)} ${'transitions'.padStart(11)}  result`,
    );
    for (const scenario of SCENARIOS) {
      const world = new AwsWorld();
      const clock = new SimulatedClock();
      scenario.arrange(world, clock);
      const server = scenario.probe === 'failing' ? failing : healthy;
      const probe: Probe = (options) =>
        runProbe({
          ...options,
          udpPort: server.sipPort,
          tcpPort: server.sipPort,
          tlsPort: server.tlsPort,
          caFile: pki.root.certFile,
        });
      const run = await runPipeline({
        clock,
        probe,
        settings: (s: PipelineSettings) => ({
          ...s,
          smoke: { ...s.smoke, closedPorts: [`${closedPort}/tcp`] },
        }),
      });
      world.restore();
      const result =
        run.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${run.status} ${run.error}`;
      console.log(
        `${scenario.name.padEnd(40)} ${String(run.path.length).padStart(11)}  ${result}`,
      );
    }
  } finally {
    await healthy.stop();
    await failing.stop();
    await pki.remove();
  }
}

/** Median of the module-load times of `file` in fresh Node processes. */
function loadTime(file: string, runs = 7): number {
  const script =
    `const t=performance.now();await import(${JSON.stringify(pathToFileURL(file).href)});` +
    'process.stdout.write(String(performance.now()-t))';
  const times = Array.from({ length: runs }, () =>
    Number(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, AWS_REGION: 'eu-west-1' },
      }),
    ),
  ).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

async function bundles(): Promise<void> {
  const built = await bundleHandlers();
  const sources = new Map(
    (await handlerFiles()).map((file) => [
      file.split('/').at(-1)?.replace(/\.ts$/, ''),
      file,
    ]),
  );
  console.log('\nHandler bundles (aim: under 300 KB and 50 ms each)');
  console.log(
    `${'handler'.padEnd(26)} ${'KB'.padStart(7)} ${'bundled ms'.padStart(11)} ${'source ms'.padStart(10)} ${'ratio'.padStart(6)}`,
  );
  for (const bundle of built) {
    const bundled = loadTime(bundle.file);
    const source = loadTime(sources.get(bundle.name) ?? '');
    console.log(
      `${bundle.name.padEnd(26)} ${(bundle.bytes / 1024).toFixed(1).padStart(7)} ` +
        `${bundled.toFixed(1).padStart(11)} ${source.toFixed(1).padStart(10)} ` +
        `${(bundled / source).toFixed(2).padStart(6)}`,
    );
  }
}

export async function bench(): Promise<void> {
  await transitions();
  await bundles();
}
