import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type LookupAll = (
  host: string,
  options: { all: true },
) => Promise<LookupAddress[]>;

/**
 * The one address every check probes, so all of them talk to the same host.
 * IPv4 first: SBCs on EC2 signal over IPv4, and an IPv6 answer for a name
 * is often only the loopback or link entry of a resolver.
 */
export async function resolveHost(
  host: string,
  lookup: LookupAll = dnsLookup,
): Promise<{ address: string } | { problem: string }> {
  if (isIP(host) !== 0) {
    return { address: host };
  }
  try {
    const addresses = await lookup(host, { all: true });
    const chosen =
      addresses.find((entry) => entry.family === 4) ?? addresses[0];
    if (chosen === undefined) {
      return { problem: `cannot resolve ${host} (no address)` };
    }
    return { address: chosen.address };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'lookup failed';
    return { problem: `cannot resolve ${host} (${code})` };
  }
}
