import { performance } from 'node:perf_hooks';
import { describeError } from '../errors.ts';
import type { SipTransport } from './message.ts';
import type { ProbeSettings } from './options.ts';
import { headerValue } from './parser.ts';
import {
  connectTcp,
  type Endpoint,
  type NetFailure,
  openTls,
  optionsOverStream,
  optionsOverUdp,
  type SipExchange,
  type TlsOffer,
  type TlsSession,
} from './transports.ts';
import type { CheckResult, ClosedPort, Figures } from './types.ts';

/** The verdict of a check before its time is stamped on it. */
export interface Verdict {
  readonly ok: boolean;
  readonly detail: string;
  readonly figures: Figures;
}

/** How a Genesys trunk connects: TLS 1.2 only, an ordinary cipher offer. */
const TRUNK_OFFER: TlsOffer = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' };

/**
 * Every version from TLS 1.0 up, so the server's own choice shows. OpenSSL
 * refuses TLS 1.0 and 1.1 at security level 1 and above, hence level 0.
 */
const WIDE_OFFER: TlsOffer = {
  minVersion: 'TLSv1',
  maxVersion: 'TLSv1.3',
  ciphers: 'DEFAULT:@SECLEVEL=0',
};

const LEGACY_VERSIONS = [
  { name: 'tls-1.0-refused', version: 'TLSv1', label: 'TLS 1.0' },
  { name: 'tls-1.1-refused', version: 'TLSv1.1', label: 'TLS 1.1' },
] as const;

/** Client-side refusals: the probe did not manage to offer the version. */
const LOCAL_TLS_CODES = new Set([
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_NO_CIPHERS_AVAILABLE',
  'ERR_SSL_NO_CIPHER_MATCH',
  'ERR_TLS_INVALID_PROTOCOL_VERSION',
  'ERR_TLS_PROTOCOL_VERSION_CONFLICT',
]);

const MAX_DETAIL = 300;
const MAX_FIGURE_TEXT = 120;
const DAY_MS = 86_400_000;

/** The names of the checks a probe with these settings runs, in order. */
export function checkNames(settings: ProbeSettings): string[] {
  return [
    'sip-options-udp',
    'sip-options-tcp',
    'sip-options-tls',
    'tls-version',
    ...LEGACY_VERSIONS.map((legacy) => legacy.name),
    'tls-chain',
    'tls-name',
    'tls-expiry',
    'tls-cipher',
    ...settings.closed.map(closedName),
  ];
}

/**
 * Runs every check concurrently against one address. The TLS checks share
 * handshakes: one as a trunk connects (OPTIONS, certificate, cipher), one
 * offering every version (the version chosen), one per legacy version.
 */
export async function runChecks(
  settings: ProbeSettings,
  address: string,
): Promise<CheckResult[]> {
  const started = performance.now();
  const timeout = settings.timeoutMs;
  const tlsTarget = {
    endpoint: { address, port: settings.tlsPort },
    serverName: settings.sni,
    ca: settings.ca,
  };

  const trunk = openTls(tlsTarget, TRUNK_OFFER, timeout);
  const wide = openTls(tlsTarget, WIDE_OFFER, timeout).then(closeSession);
  const tlsOptions = trunk.then(async (session) => {
    if (session.kind !== 'established') {
      return session;
    }
    try {
      const spent = session.connectMs + session.handshakeMs;
      const left = Math.max(1, Math.round(timeout - spent));
      return await optionsOverStream(session.socket, 'TLS', settings.sni, left);
    } finally {
      session.socket.destroy();
    }
  });
  const certificate = Promise.all([trunk, wide]).then(([main, any]) =>
    certificateSource(main, any),
  );

  const stamp = async (
    name: string,
    work: Promise<Verdict>,
  ): Promise<CheckResult> => {
    const verdict = await work.catch(
      (error: unknown): Verdict => ({
        ok: false,
        detail: `probe error: ${describeError(error)}`,
        figures: {},
      }),
    );
    return {
      name,
      ok: verdict.ok,
      detail: clip(verdict.detail, MAX_DETAIL),
      durationMs: round(performance.now() - started),
      figures: verdict.figures,
    };
  };

  const udpEndpoint = { address, port: settings.udpPort };
  const tcpEndpoint = { address, port: settings.tcpPort };
  return Promise.all([
    stamp(
      'sip-options-udp',
      optionsOverUdp(udpEndpoint, settings.sni, timeout).then((exchange) =>
        sipVerdict('UDP', settings.udpPort, exchange, settings),
      ),
    ),
    stamp(
      'sip-options-tcp',
      optionsOverTcp(tcpEndpoint, settings.sni, timeout).then((exchange) =>
        sipVerdict('TCP', settings.tcpPort, exchange, settings),
      ),
    ),
    stamp(
      'sip-options-tls',
      tlsOptions.then((exchange) =>
        sipVerdict('TLS', settings.tlsPort, exchange, settings),
      ),
    ),
    stamp('tls-version', wide.then(versionVerdict)),
    ...LEGACY_VERSIONS.map((legacy) =>
      stamp(
        legacy.name,
        openTls(
          // The chain is not judged here: Node's default store will do.
          { ...tlsTarget, ca: undefined },
          {
            minVersion: legacy.version,
            maxVersion: legacy.version,
            ciphers: WIDE_OFFER.ciphers,
          },
          timeout,
        )
          .then(closeSession)
          .then((outcome) => legacyVerdict(legacy.label, outcome)),
      ),
    ),
    stamp(
      'tls-chain',
      certificate.then((source) => chainVerdict(source, settings)),
    ),
    stamp(
      'tls-name',
      certificate.then((source) => nameVerdict(source, settings)),
    ),
    stamp(
      'tls-expiry',
      certificate.then((source) => expiryVerdict(source, settings)),
    ),
    stamp(
      'tls-cipher',
      trunk.then((session) => cipherVerdict(session, settings)),
    ),
    ...settings.closed.map((item) =>
      stamp(closedName(item), closedVerdict(address, item, settings)),
    ),
  ]);
}

/** Every check failed with the same reason, when there is nothing to probe. */
export function failedChecks(
  settings: ProbeSettings,
  detail: string,
): CheckResult[] {
  return checkNames(settings).map((name) => ({
    name,
    ok: false,
    detail: clip(detail, MAX_DETAIL),
    durationMs: 0,
    figures: {},
  }));
}

// ------------------------------------------------------------ SIP OPTIONS

async function optionsOverTcp(
  endpoint: Endpoint,
  uriHost: string,
  timeoutMs: number,
): Promise<SipExchange | NetFailure> {
  const connection = await connectTcp(endpoint, timeoutMs);
  if (connection.kind !== 'connected') {
    return connection;
  }
  try {
    const left = Math.max(1, Math.round(timeoutMs - connection.connectMs));
    return await optionsOverStream(connection.socket, 'TCP', uriHost, left);
  } finally {
    connection.socket.destroy();
  }
}

/** What a final status most likely means for an SBC answering OPTIONS. */
const STATUS_MEANINGS: Readonly<Record<number, string>> = {
  400: 'the SBC finds the request malformed',
  401: 'the SBC asks for digest authentication; trunk peers are trusted by address',
  403: 'the SBC refuses this source: the probing address is not allowed',
  404:
    'the SBC does not take the Request-URI as its own: add the name ' +
    '(alias=) or probe with the SBC FQDN as SNI',
  405: 'the routing script does not allow OPTIONS',
  407: 'the SBC asks for proxy authentication; trunk peers are trusted by address',
  408: 'the SBC forwarded OPTIONS and the next hop did not answer',
  416: 'the SBC does not accept the sip: URI scheme',
  480: 'the SBC forwarded OPTIONS instead of answering, to an unavailable target',
  482: 'loop detected: the request came back to the SBC',
  483:
    'too many hops: the SBC forwards OPTIONS in a loop (often to itself) ' +
    'instead of answering',
  500: 'the SBC failed internally: see its log',
  501: 'the routing script does not implement OPTIONS',
  502: 'the SBC relayed OPTIONS to a next hop that failed',
  503: 'the SBC is overloaded, starting, or has no next hop',
  504: 'the SBC forwarded OPTIONS and the next hop timed out',
  513: 'the SBC finds the request too large',
};

export function statusMeaning(status: number): string {
  const known = STATUS_MEANINGS[status];
  if (known !== undefined) {
    return known;
  }
  if (status < 300) {
    return 'a success, but not one of the accepted statuses';
  }
  if (status < 400) {
    return 'the SBC redirects instead of answering';
  }
  if (status < 500) {
    return 'the SBC rejects the request';
  }
  if (status < 600) {
    return 'the SBC failed to handle the request';
  }
  return 'the SBC declines the request everywhere';
}

function sipVerdict(
  transport: SipTransport,
  port: number,
  exchange: SipExchange | NetFailure,
  settings: ProbeSettings,
): Verdict {
  const where = `${port}/${transport === 'UDP' ? 'udp' : 'tcp'}`;
  const figures: Figures = { transport, port };
  if ('transmissions' in exchange) {
    figures.transmissions = exchange.transmissions;
    if (exchange.stray > 0) {
      figures.stray = exchange.stray;
    }
  }

  if (exchange.kind === 'answered') {
    const { response } = exchange;
    const server =
      headerValue(response, 'server') ?? headerValue(response, 'user-agent');
    Object.assign(figures, {
      status: response.status,
      reason: clip(response.reason, MAX_FIGURE_TEXT),
      answerMs: round(exchange.answerMs),
      ...(exchange.provisional > 0
        ? { provisional: exchange.provisional }
        : {}),
      ...(server === undefined
        ? {}
        : { server: clip(server, MAX_FIGURE_TEXT) }),
    });
    const status = `${response.status} ${clip(response.reason, 60)}`.trim();
    const retries =
      exchange.transmissions > 1
        ? ` after ${exchange.transmissions} transmissions`
        : '';
    if (settings.acceptedStatuses.includes(response.status)) {
      return {
        ok: true,
        detail: `${status} over ${transport} in ${round(exchange.answerMs)} ms${retries}`,
        figures,
      };
    }
    return {
      ok: false,
      detail: `${status} over ${transport}: ${statusMeaning(response.status)}`,
      figures,
    };
  }

  figures.code = exchange.code;
  return {
    ok: false,
    detail: `${transport} ${where}: ${failureText(transport, exchange)}`,
    figures,
  };
}

function failureText(
  transport: SipTransport,
  failure: NetFailure | SipExchange,
): string {
  if (failure.kind === 'answered') {
    return 'answered';
  }
  const stray =
    'stray' in failure && failure.stray > 0
      ? `; ${failure.stray} other message(s) ignored (${failure.strayReason})`
      : '';
  if (failure.kind === 'refused') {
    return transport === 'UDP'
      ? 'nothing listens (ICMP port unreachable)'
      : 'connection refused: nothing listens';
  }
  if (failure.kind === 'timeout') {
    const sent =
      transport === 'UDP' && 'transmissions' in failure
        ? ` after ${failure.transmissions} transmissions`
        : '';
    return `${failure.message}${sent}${stray}`;
  }
  if (failure.stage === 'handshake') {
    return `TLS handshake failed: ${tlsFailureText(failure)}`;
  }
  return `${failure.message}${stray}`;
}

// ------------------------------------------------------------ TLS

async function closeSession(
  outcome: TlsSession | NetFailure,
): Promise<TlsSession | NetFailure> {
  if (outcome.kind === 'established') {
    outcome.socket.destroy();
  }
  return outcome;
}

/** Why a handshake failed, in words, for the common OpenSSL codes. */
function tlsFailureText(failure: NetFailure): string {
  const meanings: Record<string, string> = {
    ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'the SBC refuses the TLS version',
    ERR_SSL_UNSUPPORTED_PROTOCOL:
      'the SBC picks a TLS version outside the offer',
    ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE:
      'no cipher suite or version in common',
    ERR_SSL_WRONG_VERSION_NUMBER: 'the port does not speak TLS',
    ERR_SSL_PACKET_LENGTH_TOO_LONG: 'the port does not speak TLS',
    ECONNRESET: 'the SBC closed the connection during the handshake',
  };
  const meaning = meanings[failure.code];
  return meaning === undefined
    ? `${failure.message} (${failure.code})`
    : `${meaning} (${failure.code})`;
}

function handshakeFailure(failure: NetFailure): string {
  if (failure.kind === 'refused') {
    return 'connection refused: nothing listens';
  }
  if (failure.stage === 'handshake' && failure.kind === 'failed') {
    return `TLS handshake failed: ${tlsFailureText(failure)}`;
  }
  return failure.message;
}

function versionVerdict(outcome: TlsSession | NetFailure): Verdict {
  if (outcome.kind !== 'established') {
    return {
      ok: false,
      detail: `offering TLS 1.0 to 1.3: ${handshakeFailure(outcome)}`,
      figures: { code: outcome.code },
    };
  }
  const figures = {
    protocol: outcome.protocol,
    cipher: outcome.cipher,
    handshakeMs: round(outcome.handshakeMs),
  };
  if (outcome.protocol === 'TLSv1.2' || outcome.protocol === 'TLSv1.3') {
    return {
      ok: true,
      detail: `${outcome.protocol} chosen from TLS 1.0 to 1.3`,
      figures,
    };
  }
  return {
    ok: false,
    detail:
      `${outcome.protocol} chosen from TLS 1.0 to 1.3: ` +
      'Genesys Cloud accepts TLS 1.2 only',
    figures,
  };
}

function legacyVerdict(
  label: string,
  outcome: TlsSession | NetFailure,
): Verdict {
  if (outcome.kind === 'established') {
    return {
      ok: false,
      detail: `the SBC accepts ${label} (${outcome.cipher})`,
      figures: { protocol: outcome.protocol, cipher: outcome.cipher },
    };
  }
  const figures = { code: outcome.code };
  if (LOCAL_TLS_CODES.has(outcome.code)) {
    return {
      ok: false,
      detail: `the probe could not offer ${label}: ${outcome.message}`,
      figures,
    };
  }
  if (outcome.stage === 'handshake' && outcome.kind === 'failed') {
    return {
      ok: true,
      detail: `${label} refused: ${tlsFailureText(outcome)}`,
      figures,
    };
  }
  return {
    ok: false,
    detail: `cannot tell whether ${label} is refused: ${handshakeFailure(outcome)}`,
    figures,
  };
}

interface CertificateSource {
  readonly session?: TlsSession;
  /** Why there is no certificate to judge, or how it was obtained. */
  readonly note: string;
}

/**
 * The certificate is judged from the trunk handshake; when that failed,
 * from the handshake offering every version, so a version problem does not
 * hide the state of the certificate.
 */
function certificateSource(
  trunk: TlsSession | NetFailure,
  wide: TlsSession | NetFailure,
): CertificateSource {
  if (trunk.kind === 'established') {
    return { session: trunk, note: '' };
  }
  if (wide.kind === 'established') {
    return {
      session: wide,
      note: ` (seen over ${wide.protocol}: the TLS 1.2 handshake failed)`,
    };
  }
  // The failure already says how the handshake went ("no TLS handshake
  // within 5000 ms", "TLS handshake failed: ..."): prefixing it with the
  // same words again would repeat them.
  return { note: `no certificate to judge: ${handshakeFailure(trunk)}` };
}

/** What an OpenSSL verification code means for the SBC's operator. */
const CHAIN_MEANINGS: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    'the SBC sends its certificate without the intermediate that links ' +
    'it to the CA: configure the full chain',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    'the chain leads to an issuer not in the CA bundle: an intermediate ' +
    'is missing or the CA is not trusted',
  UNABLE_TO_GET_ISSUER_CERT:
    'an issuer of the chain is neither sent by the SBC nor in the CA bundle',
  SELF_SIGNED_CERT_IN_CHAIN:
    'the chain ends in a self-signed root that is not in the CA bundle',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  CERT_HAS_EXPIRED: 'a certificate of the chain has expired',
  CERT_NOT_YET_VALID: 'a certificate of the chain is not valid yet',
  CERT_SIGNATURE_FAILURE: 'a signature of the chain does not verify',
  CERT_UNTRUSTED: 'the root of the chain is not trusted for this use',
  INVALID_CA: 'a certificate used as CA is not allowed to sign',
  CA_KEY_TOO_SMALL: 'a CA key is too small for the default security level',
  EE_KEY_TOO_SMALL: 'the certificate key is too small',
  CA_MD_TOO_WEAK: 'a chain signature uses a weak digest',
};

function chainVerdict(
  source: CertificateSource,
  settings: ProbeSettings,
): Verdict {
  const figures: Figures = { caSource: settings.caSource };
  const { session } = source;
  if (session === undefined) {
    return { ok: false, detail: source.note, figures };
  }
  const certificate = session.certificate;
  if (certificate !== undefined) {
    figures.issuer = clip(certificate.issuer, MAX_FIGURE_TEXT);
  }
  if (session.chainVerified) {
    return {
      ok: true,
      detail: `verifies against the ${settings.caSource} CA bundle${source.note}`,
      figures,
    };
  }
  const code = session.chainError ?? 'UNKNOWN';
  figures.code = code;
  return {
    ok: false,
    detail: `${CHAIN_MEANINGS[code] ?? 'the chain does not verify'} (${code})${source.note}`,
    figures,
  };
}

function nameVerdict(
  source: CertificateSource,
  settings: ProbeSettings,
): Verdict {
  const certificate = source.session?.certificate;
  if (certificate === undefined) {
    return {
      ok: false,
      detail:
        source.session === undefined ? source.note : 'no certificate sent',
      figures: { sni: settings.sni },
    };
  }
  const names = certificate.subjectAltName || certificate.subject;
  const figures = { sni: settings.sni, names: clip(names, MAX_FIGURE_TEXT) };
  if (certificate.nameMismatch === undefined) {
    return {
      ok: true,
      detail: `${settings.sni} matches ${clip(names, 100)}${source.note}`,
      figures,
    };
  }
  return {
    ok: false,
    detail: `the certificate is for ${clip(names, 100)}, not ${settings.sni}${source.note}`,
    figures,
  };
}

function expiryVerdict(
  source: CertificateSource,
  settings: ProbeSettings,
): Verdict {
  const certificate = source.session?.certificate;
  if (certificate === undefined) {
    return {
      ok: false,
      detail:
        source.session === undefined ? source.note : 'no certificate sent',
      figures: { minDays: settings.minDays },
    };
  }
  const now = Date.now();
  const daysLeft =
    Math.floor(((certificate.validTo.getTime() - now) / DAY_MS) * 10) / 10;
  const notAfter = certificate.validTo.toISOString();
  const figures = { notAfter, daysLeft, minDays: settings.minDays };
  if (certificate.validFrom.getTime() > now) {
    return {
      ok: false,
      detail: `not valid before ${certificate.validFrom.toISOString()}${source.note}`,
      figures,
    };
  }
  if (daysLeft < 0) {
    return {
      ok: false,
      detail: `expired on ${notAfter} (${-daysLeft} days ago)${source.note}`,
      figures,
    };
  }
  if (daysLeft < settings.minDays) {
    return {
      ok: false,
      detail:
        `expires on ${notAfter}, in ${daysLeft} days: fewer than ` +
        `${settings.minDays}${source.note}`,
      figures,
    };
  }
  return {
    ok: true,
    detail: `expires on ${notAfter}, in ${daysLeft} days${source.note}`,
    figures,
  };
}

function cipherVerdict(
  session: TlsSession | NetFailure,
  settings: ProbeSettings,
): Verdict {
  if (session.kind !== 'established') {
    return {
      ok: false,
      detail: `offering TLS 1.2: ${handshakeFailure(session)}`,
      figures: { code: session.code },
    };
  }
  const keyType = session.certificate?.keyType ?? 'unknown';
  const figures = {
    cipher: session.cipher,
    protocol: session.protocol,
    keyType,
  };
  if (settings.allowedCiphers.includes(session.cipher)) {
    return {
      ok: true,
      detail: `${session.cipher} over ${session.protocol}`,
      figures,
    };
  }
  const hint =
    keyType === 'rsa'
      ? ''
      : `; the certificate has an ${keyType.toUpperCase()} key, the ` +
        'allowed suites are RSA-authenticated';
  return {
    ok: false,
    detail: `${session.cipher} is not an allowed suite${hint}`,
    figures,
  };
}

// ------------------------------------------------------------ closed ports

function closedName(item: ClosedPort): string {
  return `closed-${item.port}/${item.proto}`;
}

async function closedVerdict(
  address: string,
  item: ClosedPort,
  settings: ProbeSettings,
): Promise<Verdict> {
  const endpoint = { address, port: item.port };
  const where = `${item.port}/${item.proto}`;
  if (item.proto === 'tcp') {
    const outcome = await connectTcp(endpoint, settings.timeoutMs);
    if (outcome.kind === 'connected') {
      outcome.socket.destroy();
      return {
        ok: false,
        detail: `${where} accepts connections`,
        figures: { state: 'open' },
      };
    }
    return closedOutcome(where, outcome);
  }

  const exchange = await optionsOverUdp(
    endpoint,
    settings.sni,
    settings.timeoutMs,
  );
  if (exchange.kind === 'answered') {
    const status = `${exchange.response.status} ${clip(exchange.response.reason, 60)}`;
    return {
      ok: false,
      detail: `${where} answers SIP (${clip(status, 60)})`,
      figures: { state: 'open', status: exchange.response.status },
    };
  }
  if (exchange.stray > 0) {
    return {
      ok: false,
      detail: `${where} sends datagrams back`,
      figures: { state: 'open', datagrams: exchange.stray },
    };
  }
  return closedOutcome(where, exchange);
}

function closedOutcome(where: string, outcome: NetFailure): Verdict {
  if (outcome.kind === 'refused') {
    return {
      ok: true,
      detail: `${where} refused`,
      figures: { state: 'refused' },
    };
  }
  if (outcome.kind === 'timeout') {
    return {
      ok: true,
      detail: `${where} silent: ${outcome.message} (closed or filtered)`,
      figures: { state: 'silent' },
    };
  }
  return {
    ok: true,
    detail: `${where} unreachable (${outcome.code})`,
    figures: { state: 'unreachable', code: outcome.code },
  };
}

// ------------------------------------------------------------ helpers

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * Cuts a text to `max` characters. Control characters go first: reasons
 * and headers come from the network and end up on a terminal.
 */
function clip(text: string, max: number): string {
  const printable = text.replace(/[\p{Cc}\p{Cf}]/gu, '?');
  return printable.length > max
    ? `${printable.slice(0, max - 3)}...`
    : printable;
}
