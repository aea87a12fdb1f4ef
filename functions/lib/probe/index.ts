import { performance } from 'node:perf_hooks';
import { failedChecks, runChecks } from './checks.ts';
import { resolveOptions } from './options.ts';
import { resolveHost } from './resolve.ts';
import type { ProbeOptions, ProbeReport } from './types.ts';

export { checkNames, statusMeaning } from './checks.ts';
export { ProbeOptionsError } from './errors.ts';
export { formatReport } from './format.ts';
export { GENESYS_CIPHERS, LIMITS, parseClosedPorts } from './options.ts';
export type {
  CheckResult,
  ClosedPort,
  Figures,
  ProbeOptions,
  ProbeReport,
} from './types.ts';

/**
 * The SIP and TLS smoke test of an SBC: OPTIONS over UDP, TCP and TLS, the
 * TLS versions, chain, name, expiry and cipher, and the ports that must stay
 * closed, all at once. A failing SBC gives a report whose `ok` is false;
 * only bad options throw (`ProbeOptionsError`).
 */
export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  const settings = await resolveOptions(options);
  const startedAt = new Date().toISOString();
  const started = performance.now();

  const resolved = await resolveHost(settings.host);
  const checks =
    'address' in resolved
      ? await runChecks(settings, resolved.address)
      : failedChecks(settings, resolved.problem);

  return {
    ok: checks.every((check) => check.ok),
    host: settings.host,
    sni: settings.sni,
    ...('address' in resolved ? { address: resolved.address } : {}),
    startedAt,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    checks,
  };
}
