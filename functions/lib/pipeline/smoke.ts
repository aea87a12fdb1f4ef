import { z } from 'zod';
import { SmokeTestFailedError } from '../errors.ts';
import {
  type CheckResult,
  type ProbeOptions,
  type ProbeReport,
  parseClosedPorts,
} from '../probe/index.ts';
import type { PipelineSettings } from './settings.ts';

export const SmokeTestInputSchema = z.strictObject({
  runId: z.string().min(1),
  execution: z.string().min(1),
  imageId: z.string().min(1),
  address: z.string().min(1),
  fqdn: z.string().min(1),
});

export type SmokeTestInput = z.infer<typeof SmokeTestInputSchema>;

/** `$.smoke` in the state: the report, one entry per check. */
export type SmokeReport = ProbeReport;

export interface SmokeDeps {
  readonly probe: (options: ProbeOptions) => Promise<ProbeReport>;
  readonly settings: PipelineSettings;
  /** CA bundle the certificate must chain to; the system's when absent. */
  readonly caFile?: string;
}

/**
 * Probes the test host as a Genesys trunk would reach it: SIP OPTIONS over
 * UDP, TCP and TLS, the TLS version, chain, name, expiry and cipher, and the
 * ports that must stay closed. Any failing check fails the run.
 */
export async function smokeTest(
  input: SmokeTestInput,
  deps: SmokeDeps,
): Promise<SmokeReport> {
  const report = await deps.probe({
    host: input.address,
    sni: input.fqdn,
    caFile: deps.caFile,
    minDays: deps.settings.smoke.minDays,
    timeoutMs: deps.settings.smoke.timeoutMs,
    closed: parseClosedPorts(deps.settings.smoke.closedPorts.join(',')),
  });
  if (!report.ok) {
    const failed = report.checks.filter((check) => !check.ok);
    throw new SmokeTestFailedError(
      `smoke test of ${input.imageId} failed: ${failed.map(describeCheck).join('; ')}`,
      { data: { imageId: input.imageId, failed: failed.map((c) => c.name) } },
    );
  }
  return report;
}

function describeCheck(check: CheckResult): string {
  return `${check.name} (${check.detail})`;
}
