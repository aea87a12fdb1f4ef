/** A port that must not answer on the probed host. */
export interface ClosedPort {
  port: number;
  proto: 'udp' | 'tcp';
}

export interface ProbeOptions {
  /** Address or name to connect to. */
  host: string;
  /** FQDN sent as SNI, put in the Request-URI and used for the name check; default `host`. */
  sni?: string;
  /** CA bundle (PEM) to verify the chain with; default the system's. */
  caFile?: string;
  caPem?: string;
  /** SIP over UDP, TCP and TLS: 5060, 5060 and 5061 by default. */
  udpPort?: number;
  tcpPort?: number;
  tlsPort?: number;
  /** Days the certificate must still be valid: 14 by default. */
  minDays?: number;
  /** Budget of each check (connect, handshake and answer): 5000 ms by default. */
  timeoutMs?: number;
  /** Ports that must not answer. */
  closed?: ClosedPort[];
  /** Final statuses that count as an answer: `[200]` by default. */
  acceptedStatuses?: number[];
  /** TLS 1.2 cipher suites (OpenSSL names) allowed; default the Genesys list. */
  allowedCiphers?: string[];
}

/** Scalars only, so a report stays small and JSON-serialisable. */
export type Figures = Record<string, number | string | boolean>;

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  durationMs: number;
  figures: Figures;
}

export interface ProbeReport {
  ok: boolean;
  host: string;
  sni: string;
  /** The address probed, once `host` resolved. */
  address?: string;
  startedAt: string;
  durationMs: number;
  checks: CheckResult[];
}
