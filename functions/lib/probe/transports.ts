import dgram from 'node:dgram';
import { isIP, isIPv6, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import tls, {
  type SecureContext,
  type SecureVersion,
  type TLSSocket,
} from 'node:tls';
import {
  buildOptions,
  matchesRequest,
  type OptionsRequest,
  type SipTransport,
} from './message.ts';
import {
  parseSipMessage,
  type SipResponse,
  SipStreamFramer,
} from './parser.ts';

/** RFC 3261 timers: first retransmission after T1, doubling up to T2. */
export const TIMER_T1_MS = 500;
export const TIMER_T2_MS = 4000;

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** How a network exchange ended when it produced no usable answer. */
export interface NetFailure {
  readonly kind: 'refused' | 'timeout' | 'failed';
  /** Where it stopped: the TCP connect, the TLS handshake, or the SIP exchange. */
  readonly stage: 'connect' | 'handshake' | 'exchange';
  /** An errno or OpenSSL code (`ECONNREFUSED`, `ERR_SSL_...`), or `TIMEOUT`. */
  readonly code: string;
  readonly message: string;
}

export interface SipAnswer {
  readonly kind: 'answered';
  readonly response: SipResponse;
  /** From the first transmission to the final response. */
  readonly answerMs: number;
  readonly transmissions: number;
  /** 1xx responses seen before the final one. */
  readonly provisional: number;
}

/** The end of an OPTIONS exchange, with what was seen on the way. */
export type SipExchange = (SipAnswer | NetFailure) & {
  readonly transmissions: number;
  /** Datagrams or frames received that were not our final response. */
  readonly stray: number;
  /** Why the last stray input was not an answer. */
  readonly strayReason?: string;
};

/**
 * OPTIONS over UDP on a connected socket, so an ICMP port unreachable comes
 * back as ECONNREFUSED instead of a silent wait. Retransmits like RFC 3261
 * timer E (T1 doubling to T2; T2 once a provisional response arrived) until
 * a final response or the deadline.
 */
export function optionsOverUdp(
  endpoint: Endpoint,
  uriHost: string,
  timeoutMs: number,
): Promise<SipExchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(
      isIPv6(endpoint.address) ? 'udp6' : 'udp4',
    );
    const started = performance.now();
    let request: OptionsRequest | undefined;
    let transmissions = 0;
    let provisional = 0;
    let stray = 0;
    let strayReason: string | undefined;
    let interval = TIMER_T1_MS;
    let retransmit: NodeJS.Timeout | undefined;
    let done = false;

    const finish = (outcome: SipAnswer | NetFailure): void => {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(deadline);
      clearTimeout(retransmit);
      socket.close();
      resolve({ ...outcome, transmissions, stray, strayReason });
    };
    const deadline = setTimeout(
      () => finish(timeoutFailure('exchange', timeoutMs)),
      timeoutMs,
    );
    const send = (): void => {
      if (request === undefined || done) {
        return;
      }
      transmissions += 1;
      socket.send(request.text, (error) => {
        if (error) {
          finish(socketFailure('exchange', error));
        }
      });
    };
    const schedule = (): void => {
      retransmit = setTimeout(() => {
        send();
        interval = Math.min(interval * 2, TIMER_T2_MS);
        schedule();
      }, interval);
    };

    socket.on('error', (error) => finish(socketFailure('exchange', error)));
    socket.on('message', (datagram) => {
      const parsed = parseSipMessage(datagram);
      if (
        request === undefined ||
        parsed.kind !== 'response' ||
        !matchesRequest(parsed, request)
      ) {
        stray += 1;
        strayReason = parsed.kind === 'invalid' ? parsed.reason : 'not ours';
        return;
      }
      if (parsed.status < 200) {
        provisional += 1;
        interval = TIMER_T2_MS;
        return;
      }
      finish({
        kind: 'answered',
        response: parsed,
        answerMs: performance.now() - started,
        transmissions,
        provisional,
      });
    });
    socket.connect(endpoint.port, endpoint.address, () => {
      const local = socket.address();
      request = buildOptions({
        transport: 'UDP',
        uriHost,
        port: endpoint.port,
        localAddress: local.address,
        localPort: local.port,
      });
      send();
      schedule();
    });
  });
}

/**
 * OPTIONS over an open TCP or TLS connection, framed by the empty line and
 * Content-Length. The socket stays open: the caller owns and closes it.
 */
export function optionsOverStream(
  socket: Socket,
  transport: Exclude<SipTransport, 'UDP'>,
  uriHost: string,
  timeoutMs: number,
): Promise<SipExchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const framer = new SipStreamFramer();
    const request = buildOptions({
      transport,
      uriHost,
      port: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '0.0.0.0',
      localPort: socket.localPort ?? 0,
    });
    let provisional = 0;
    let stray = 0;
    let strayReason: string | undefined;
    let done = false;

    const finish = (outcome: SipAnswer | NetFailure): void => {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(deadline);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve({ ...outcome, transmissions: 1, stray, strayReason });
    };
    const deadline = setTimeout(() => {
      const seen =
        framer.pending > 0 ? ` (${framer.pending} bytes unframed)` : '';
      finish({
        ...timeoutFailure('exchange', timeoutMs),
        message: `no answer within ${timeoutMs} ms${seen}`,
      });
    }, timeoutMs);
    const onError = (error: Error): void =>
      finish(socketFailure('exchange', error));
    const onClose = (): void =>
      finish({
        kind: 'failed',
        stage: 'exchange',
        code: 'CLOSED',
        message: 'the SBC closed the connection without a final answer',
      });
    const onData = (chunk: Buffer): void => {
      for (const item of framer.push(chunk)) {
        if (item.kind === 'error') {
          finish({
            kind: 'failed',
            stage: 'exchange',
            code: 'UNFRAMEABLE',
            message: `the answer cannot be framed: ${item.reason}`,
          });
          return;
        }
        const parsed = parseSipMessage(item.bytes);
        if (parsed.kind !== 'response' || !matchesRequest(parsed, request)) {
          stray += 1;
          strayReason = parsed.kind === 'invalid' ? parsed.reason : 'not ours';
          continue;
        }
        if (parsed.status < 200) {
          provisional += 1;
          continue;
        }
        finish({
          kind: 'answered',
          response: parsed,
          answerMs: performance.now() - started,
          transmissions: 1,
          provisional,
        });
        return;
      }
    };

    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(request.text);
  });
}

export interface TcpConnection {
  readonly kind: 'connected';
  readonly socket: Socket;
  readonly connectMs: number;
}

/** A TCP connection, or why there is none within the deadline. */
export function connectTcp(
  endpoint: Endpoint,
  timeoutMs: number,
): Promise<TcpConnection | NetFailure> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = new Socket();
    const deadline = setTimeout(() => {
      socket.destroy();
      resolve(timeoutFailure('connect', timeoutMs));
    }, timeoutMs);
    socket.on('error', (error) => {
      clearTimeout(deadline);
      socket.destroy();
      resolve(socketFailure('connect', error));
    });
    socket.connect(endpoint.port, endpoint.address, () => {
      clearTimeout(deadline);
      socket.setNoDelay(true);
      resolve({
        kind: 'connected',
        socket,
        connectMs: performance.now() - started,
      });
    });
  });
}

/** What a client offers in a TLS handshake. */
export interface TlsOffer {
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  /** OpenSSL cipher string; Node's default when absent. */
  readonly ciphers?: string;
}

export interface CertificateFacts {
  readonly subject: string;
  readonly subjectAltName: string;
  readonly issuer: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  /** `rsa`, `ec`, `ed25519`... */
  readonly keyType: string;
  /** Why the name does not match, when it does not. */
  readonly nameMismatch?: string;
}

export interface TlsSession {
  readonly kind: 'established';
  readonly socket: TLSSocket;
  readonly protocol: string;
  readonly cipher: string;
  /** The chain verified against the CA bundle (the name is checked apart). */
  readonly chainVerified: boolean;
  readonly chainError?: string;
  readonly certificate?: CertificateFacts;
  readonly connectMs: number;
  readonly handshakeMs: number;
}

export interface TlsTarget {
  readonly endpoint: Endpoint;
  /** The FQDN to send as SNI and to match the certificate against. */
  readonly serverName: string;
  /** Trusted CA certificates (PEM); Node's default store when absent. */
  readonly ca?: readonly string[];
}

/**
 * Secure contexts by CA bundle and offer. Building one parses every CA
 * certificate (tens of milliseconds for a system store), so a bundle that
 * stays the same, such as the system store, is parsed once per process.
 */
const contexts = new WeakMap<readonly string[], Map<string, SecureContext>>();
const DEFAULT_STORE: readonly string[] = [];

function contextFor(
  ca: readonly string[] | undefined,
  offer: TlsOffer,
): SecureContext {
  const bundle = ca ?? DEFAULT_STORE;
  const key = `${offer.minVersion}/${offer.maxVersion}/${offer.ciphers ?? ''}`;
  let byOffer = contexts.get(bundle);
  if (byOffer === undefined) {
    byOffer = new Map();
    contexts.set(bundle, byOffer);
  }
  let context = byOffer.get(key);
  if (context === undefined) {
    context = tls.createSecureContext({
      ...(ca === undefined ? {} : { ca: [...ca] }),
      minVersion: offer.minVersion,
      maxVersion: offer.maxVersion,
      ciphers: offer.ciphers,
    });
    byOffer.set(key, context);
  }
  return context;
}

/**
 * A TLS handshake with the given offer. The chain is verified against the
 * CA bundle but a failure does not abort the handshake: the checks report
 * each problem on its own, and the name is matched separately so a chain
 * error does not hide a name error.
 */
export function openTls(
  target: TlsTarget,
  offer: TlsOffer,
  timeoutMs: number,
): Promise<TlsSession | NetFailure> {
  return new Promise((resolve) => {
    const started = performance.now();
    let connectMs: number | undefined;
    let socket: TLSSocket;
    try {
      socket = tls.connect({
        host: target.endpoint.address,
        port: target.endpoint.port,
        // RFC 6066 forbids an address as SNI.
        servername:
          isIP(target.serverName) === 0 ? target.serverName : undefined,
        secureContext: contextFor(target.ca, offer),
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      });
    } catch (error) {
      resolve(socketFailure('connect', error));
      return;
    }

    const deadline = setTimeout(() => {
      socket.destroy();
      const stage = connectMs === undefined ? 'connect' : 'handshake';
      resolve(timeoutFailure(stage, timeoutMs));
    }, timeoutMs);
    socket.once('connect', () => {
      connectMs = performance.now() - started;
    });
    socket.on('error', (error) => {
      clearTimeout(deadline);
      socket.destroy();
      const stage = connectMs === undefined ? 'connect' : 'handshake';
      resolve(socketFailure(stage, error));
    });
    socket.once('secureConnect', () => {
      clearTimeout(deadline);
      socket.setNoDelay(true);
      const cipher = socket.getCipher();
      const verifyError = socket.authorizationError as unknown;
      resolve({
        kind: 'established',
        socket,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: cipher.name,
        chainVerified: socket.authorized,
        chainError: verifyError === null ? undefined : errorCode(verifyError),
        certificate: certificateFacts(socket, target.serverName),
        connectMs: connectMs ?? 0,
        handshakeMs: performance.now() - started - (connectMs ?? 0),
      });
    });
  });
}

function certificateFacts(
  socket: TLSSocket,
  serverName: string,
): CertificateFacts | undefined {
  // Fetched once: in Node 22.23 a second call of getPeerX509Certificate,
  // or getPeerCertificate after it, returns nothing.
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) {
    return undefined;
  }
  const mismatch = tls.checkServerIdentity(serverName, x509.toLegacyObject());
  return {
    subject: x509.subject.replace(/\n/g, ', '),
    subjectAltName: x509.subjectAltName ?? '',
    issuer: x509.issuer.replace(/\n/g, ', '),
    validFrom: x509.validFromDate,
    validTo: x509.validToDate,
    keyType: x509.publicKey.asymmetricKeyType ?? 'unknown',
    nameMismatch: mismatch?.message,
  };
}

function timeoutFailure(
  stage: NetFailure['stage'],
  timeoutMs: number,
): NetFailure {
  const what = {
    connect: 'no connection',
    handshake: 'no TLS handshake',
    exchange: 'no answer',
  }[stage];
  return {
    kind: 'timeout',
    stage,
    code: 'TIMEOUT',
    message: `${what} within ${timeoutMs} ms`,
  };
}

function socketFailure(stage: NetFailure['stage'], error: unknown): NetFailure {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return {
    kind: code === 'ECONNREFUSED' ? 'refused' : 'failed',
    stage,
    code,
    message,
  };
}

function errorCode(error: unknown): string {
  if (typeof error === 'string') {
    return error;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}
