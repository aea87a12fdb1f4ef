import { expect } from 'vitest';
import {
  type CheckResult,
  type ProbeOptions,
  type ProbeReport,
  runProbe,
} from '../../functions/lib/probe/index.ts';
import { type KamailioServer, SBC_NAME } from '../support/kamailio.ts';

/** Probes a test Kamailio by address, with the SBC name as SNI. */
export function probeServer(
  server: KamailioServer,
  options: Partial<ProbeOptions> = {},
): Promise<ProbeReport> {
  return runProbe({
    host: server.address,
    sni: SBC_NAME,
    udpPort: server.sipPort,
    tcpPort: server.sipPort,
    tlsPort: server.tlsPort,
    timeoutMs: 3000,
    ...options,
  });
}

/** The names of the checks that failed, in report order. */
export function failing(report: ProbeReport): string[] {
  return report.checks.filter((check) => !check.ok).map((check) => check.name);
}

/** One check of a report; fails the test when it is missing. */
export function check(report: ProbeReport, name: string): CheckResult {
  const found = report.checks.find((item) => item.name === name);
  expect(found, `check ${name} in the report`).toBeDefined();
  return found as CheckResult;
}
