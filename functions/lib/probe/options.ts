import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { z } from 'zod';
import { lazy } from '../config.ts';
import { ProbeOptionsError } from './errors.ts';
import type { ClosedPort, ProbeOptions } from './types.ts';

/**
 * The TLS 1.2 suites a Genesys Cloud BYOC trunk offers, OpenSSL names: all
 * RSA-authenticated, ECDHE first, plain RSA key exchange as fallback.
 */
export const GENESYS_CIPHERS: readonly string[] = [
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

/** The ranges of the numeric options, for the schema and for callers' help. */
export const LIMITS = {
  port: { min: 1, max: 65_535 },
  minDays: { min: 0, max: 3650 },
  timeoutMs: { min: 1, max: 600_000 },
  status: { min: 100, max: 699 },
} as const;

export const DEFAULTS = {
  udpPort: 5060,
  tcpPort: 5060,
  tlsPort: 5061,
  minDays: 14,
  timeoutMs: 5000,
  acceptedStatuses: [200],
} as const;

/** Where the trusted CA certificates came from. */
export type CaSource = 'file' | 'pem' | 'system' | 'bundled';

/** Options checked, defaults filled in, CA bundle loaded. */
export interface ProbeSettings {
  readonly host: string;
  readonly sni: string;
  readonly ca: readonly string[];
  readonly caSource: CaSource;
  readonly udpPort: number;
  readonly tcpPort: number;
  readonly tlsPort: number;
  readonly minDays: number;
  readonly timeoutMs: number;
  readonly closed: readonly ClosedPort[];
  readonly acceptedStatuses: readonly number[];
  readonly allowedCiphers: readonly string[];
}

const HOST = /^[A-Za-z0-9._:-]+$/;
const { port: PORTS, minDays: DAYS, timeoutMs: TIMEOUT, status: SIP } = LIMITS;
const PORT_PROBLEM = `must be a port from ${PORTS.min} to ${PORTS.max}`;
const port = z
  .number(PORT_PROBLEM)
  .int(PORT_PROBLEM)
  .min(PORTS.min, PORT_PROBLEM)
  .max(PORTS.max, PORT_PROBLEM);
const DAYS_PROBLEM = `must be from ${DAYS.min} to ${DAYS.max} days`;
const TIMEOUT_PROBLEM = `must be from ${TIMEOUT.min} to ${TIMEOUT.max} ms`;
const STATUS_PROBLEM = `must be a SIP status from ${SIP.min} to ${SIP.max}`;

const schema = z.strictObject({
  host: z.string().regex(HOST, 'must be an address or a host name'),
  sni: z.string().regex(HOST, 'must be an FQDN or an address').optional(),
  caFile: z.string().min(1, 'must name a file').optional(),
  caPem: z.string().min(1, 'must hold PEM certificates').optional(),
  udpPort: port.optional(),
  tcpPort: port.optional(),
  tlsPort: port.optional(),
  minDays: z
    .number(DAYS_PROBLEM)
    .min(DAYS.min, DAYS_PROBLEM)
    .max(DAYS.max, DAYS_PROBLEM)
    .optional(),
  timeoutMs: z
    .number(TIMEOUT_PROBLEM)
    .int('must be whole milliseconds')
    .min(TIMEOUT.min, TIMEOUT_PROBLEM)
    .max(TIMEOUT.max, TIMEOUT_PROBLEM)
    .optional(),
  closed: z
    .array(
      z.strictObject({
        port,
        proto: z.enum(['udp', 'tcp'], 'must be udp or tcp'),
      }),
    )
    .optional(),
  acceptedStatuses: z
    .array(
      z
        .number(STATUS_PROBLEM)
        .int(STATUS_PROBLEM)
        .min(SIP.min, STATUS_PROBLEM)
        .max(SIP.max, STATUS_PROBLEM),
    )
    .min(1, 'must list at least one status')
    .optional(),
  // Each name is checked against OpenSSL's list after parsing.
  allowedCiphers: z
    .array(z.string())
    .min(1, 'must list at least one cipher')
    .optional(),
});

/**
 * Checks the options and fills in the defaults. Throws `ProbeOptionsError`
 * naming the first bad option; a probe never starts on bad options.
 */
export async function resolveOptions(
  options: ProbeOptions,
): Promise<ProbeSettings> {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      const key = issue.keys[0] ?? 'options';
      const at = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
      throw new ProbeOptionsError(`${at}${key}`, 'is not a probe option');
    }
    const field = issue?.path.join('.') || 'options';
    throw new ProbeOptionsError(field, issue?.message ?? 'invalid');
  }
  const given = parsed.data;
  if (given.caFile !== undefined && given.caPem !== undefined) {
    throw new ProbeOptionsError('caFile', 'give caFile or caPem, not both');
  }

  const settings = {
    host: given.host,
    sni: given.sni ?? given.host,
    udpPort: given.udpPort ?? DEFAULTS.udpPort,
    tcpPort: given.tcpPort ?? DEFAULTS.tcpPort,
    tlsPort: given.tlsPort ?? DEFAULTS.tlsPort,
    minDays: given.minDays ?? DEFAULTS.minDays,
    timeoutMs: given.timeoutMs ?? DEFAULTS.timeoutMs,
    closed: dedupe(given.closed ?? []),
    acceptedStatuses: given.acceptedStatuses ?? [...DEFAULTS.acceptedStatuses],
    allowedCiphers: knownCiphers(given.allowedCiphers ?? GENESYS_CIPHERS),
  };
  rejectClosedSipPorts(settings);
  return { ...settings, ...(await loadCa(given.caFile, given.caPem)) };
}

/**
 * Parses `22/tcp,2223/udp`. Throws `ProbeOptionsError` (field `closed`)
 * quoting the first item that is not PORT/udp or PORT/tcp.
 */
export function parseClosedPorts(text: string): ClosedPort[] {
  if (text.trim().length === 0) {
    return [];
  }
  const ports = text.split(',').map((item, index) => {
    const match = /^([0-9]{1,5})\/(udp|tcp)$/i.exec(item.trim());
    const number = Number(match?.[1]);
    if (match === null || number < 1 || number > 65_535) {
      throw new ProbeOptionsError(
        'closed',
        `item ${index + 1} ${JSON.stringify(item.trim())} is not PORT/udp ` +
          'or PORT/tcp with a port from 1 to 65535',
      );
    }
    const proto = (match[2] ?? '').toLowerCase() === 'udp' ? 'udp' : 'tcp';
    return { port: number, proto } satisfies ClosedPort;
  });
  return dedupe(ports);
}

/** The suites OpenSSL in this Node knows, lowercase as `getCiphers` has them. */
const opensslCiphers = lazy(() => new Set(tls.getCiphers()));

/**
 * The allowed suites in OpenSSL's own spelling (upper case, as a session
 * reports its cipher), each one a suite OpenSSL knows: a misspelt name
 * could never match and would fail every SBC.
 */
function knownCiphers(names: readonly string[]): string[] {
  return names.map((name, index) => {
    if (!opensslCiphers().has(name.toLowerCase())) {
      throw new ProbeOptionsError(
        `allowedCiphers.${index}`,
        `${JSON.stringify(name)} is not a TLS cipher suite OpenSSL knows ` +
          '(OpenSSL names, as `openssl ciphers -v` lists them)',
      );
    }
    return name.toUpperCase();
  });
}

function dedupe(ports: readonly ClosedPort[]): ClosedPort[] {
  const seen = new Map<string, ClosedPort>();
  for (const item of ports) {
    seen.set(`${item.port}/${item.proto}`, item);
  }
  return [...seen.values()];
}

/** A port cannot be both probed for SIP and required to stay closed. */
function rejectClosedSipPorts(settings: {
  udpPort: number;
  tcpPort: number;
  tlsPort: number;
  closed: readonly ClosedPort[];
}): void {
  const sip = [
    { port: settings.udpPort, proto: 'udp', field: 'udpPort' },
    { port: settings.tcpPort, proto: 'tcp', field: 'tcpPort' },
    { port: settings.tlsPort, proto: 'tcp', field: 'tlsPort' },
  ];
  for (const item of settings.closed) {
    const clash = sip.find(
      (s) => s.port === item.port && s.proto === item.proto,
    );
    if (clash !== undefined) {
      throw new ProbeOptionsError(
        'closed',
        `${item.port}/${item.proto} is also the SIP port (${clash.field})`,
      );
    }
  }
}

async function loadCa(
  caFile: string | undefined,
  caPem: string | undefined,
): Promise<{ ca: string[]; caSource: CaSource }> {
  if (caFile !== undefined) {
    let text: string;
    try {
      text = await readFile(caFile, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ProbeOptionsError(
        'caFile',
        `cannot read ${caFile} (${code})`,
        error,
      );
    }
    return { ca: splitPem('caFile', text, caFile), caSource: 'file' };
  }
  if (caPem !== undefined) {
    return { ca: splitPem('caPem', caPem, 'the PEM text'), caSource: 'pem' };
  }
  // The system store is what operators manage; Node's bundled Mozilla list
  // serves where the system has none (a minimal container image).
  const system = systemCa();
  if (system.length > 0) {
    return { ca: system, caSource: 'system' };
  }
  return { ca: bundledCa(), caSource: 'bundled' };
}

/**
 * Read once per process, duplicates dropped (Debian's store lists each
 * certificate several times: the bundle, the files and their hash links).
 * The same array each time lets the transports reuse their TLS contexts.
 */
const systemCa = lazy(() => [...new Set(tls.getCACertificates('system'))]);
const bundledCa = lazy(() => [...new Set(tls.getCACertificates('bundled'))]);

/** The certificates of a PEM bundle, each checked to parse. */
function splitPem(field: string, text: string, where: string): string[] {
  const blocks =
    text.match(
      /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
    ) ?? [];
  if (blocks.length === 0) {
    throw new ProbeOptionsError(field, `${where} holds no PEM certificate`);
  }
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new ProbeOptionsError(
        field,
        `certificate ${index + 1} in ${where} does not parse`,
        error,
      );
    }
  }
  return blocks;
}
