import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { runProbe } from '../functions/lib/probe/index.ts';
import { missingRequirements, TOOLS } from '../functions/lib/system/tools.ts';
import {
  freePort,
  type KamailioServer,
  SBC_NAME,
  startKamailio,
} from '../tests/support/kamailio.ts';
import { createPki } from '../tests/support/pki.ts';

/**
 * A full probe of a local Kamailio against Debian's sipsak sending the same
 * three OPTIONS (UDP, TCP, TLS): medians of several runs, total and per
 * check, and the ratio. Figures are printed, never asserted.
 */

const RUNS = 15;
const run = promisify(execFile);

export async function bench(): Promise<void> {
  const missing = missingRequirements({
    root: true,
    tools: [TOOLS.kamailio, TOOLS.sipsak, TOOLS.openssl],
  });
  if (missing.length > 0) {
    console.log(`probe: skipped, needs ${missing.join(', ')}`);
    return;
  }

  const pki = await createPki();
  let server: KamailioServer | undefined;
  try {
    const leaf = await pki.issueLeaf('sbc', {
      commonName: SBC_NAME,
      ipAddresses: ['127.0.0.1'],
    });
    // TLS 1.2 only, as a Genesys trunk speaks it: sipsak 0.9.8.1 cannot read
    // answers after a TLS 1.3 handshake. 127.0.0.1 is sipsak's URI host.
    server = await startKamailio({
      tls: {
        certificateFile: leaf.chainFile,
        privateKeyFile: leaf.keyFile,
        method: 'TLSv1.2',
      },
      aliases: [SBC_NAME, '127.0.0.1'],
    });
    const closed = [
      { port: await freePort(false), proto: 'tcp' as const },
      { port: await freePort(true), proto: 'udp' as const },
    ];
    const target = server;
    const probe = () =>
      runProbe({
        host: target.address,
        sni: SBC_NAME,
        caFile: pki.root.certFile,
        udpPort: target.sipPort,
        tcpPort: target.sipPort,
        tlsPort: target.tlsPort,
        closed,
      });
    const sipsak = (transport: 'udp' | 'tcp' | 'tls') => {
      const port = transport === 'tls' ? target.tlsPort : target.sipPort;
      const args = ['-s', 'sip:127.0.0.1', '-r', String(port)];
      args.push('--transport', transport);
      if (transport === 'tls') {
        args.push('--tls-ca-cert', pki.root.certFile);
      }
      return run('sipsak', args, { timeout: 10_000 });
    };
    const transports = ['udp', 'tcp', 'tls'] as const;

    // The first run pays one-time costs (OpenSSL init, Kamailio workers).
    const first = await timed(probe);
    await Promise.all(transports.map(sipsak));

    const totals: number[] = [];
    const perCheck = new Map<string, number[]>();
    let failures = 0;
    for (let i = 0; i < RUNS; i += 1) {
      const { ms, value: report } = await timed(probe);
      totals.push(ms);
      failures += report.ok ? 0 : 1;
      for (const check of report.checks) {
        const list = perCheck.get(check.name) ?? [];
        list.push(check.durationMs);
        perCheck.set(check.name, list);
      }
    }
    const sequential: number[] = [];
    const parallel: number[] = [];
    for (let i = 0; i < RUNS; i += 1) {
      sequential.push(
        (
          await timed(async () => {
            for (const transport of transports) {
              await sipsak(transport);
            }
          })
        ).ms,
      );
      parallel.push(
        (await timed(() => Promise.all(transports.map(sipsak)))).ms,
      );
    }

    const probeMs = median(totals);
    const lines = [
      `probe: Kamailio ${server.address}, ${RUNS} runs, medians ` +
        `(${failures} failed runs)`,
      row(`full probe, ${perCheck.size} checks at once`, probeMs, totals),
      row('  first run in this process', first.ms),
      ...[...perCheck].map(([name, values]) =>
        row(`  ${name}`, median(values), values),
      ),
      row(
        'sipsak, 3 OPTIONS one after another',
        median(sequential),
        sequential,
      ),
      row('sipsak, 3 OPTIONS at once', median(parallel), parallel),
      `  ratio probe / sipsak one after another: ${ratio(probeMs, median(sequential))}`,
      `  ratio probe / sipsak at once:           ${ratio(probeMs, median(parallel))}`,
    ];
    console.log(lines.join('\n'));
  } finally {
    await server?.stop();
    await pki.remove();
  }
}

async function timed<T>(
  work: () => Promise<T>,
): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function row(label: string, ms: number, values?: readonly number[]): string {
  const spread =
    values === undefined
      ? ''
      : `  (min ${Math.min(...values).toFixed(1)}, max ${Math.max(...values).toFixed(1)})`;
  return `  ${label.padEnd(40)} ${ms.toFixed(1).padStart(8)} ms${spread}`;
}

function ratio(a: number, b: number): string {
  return b > 0 ? (a / b).toFixed(2) : 'n/a';
}
