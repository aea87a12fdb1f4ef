import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import {
  headerValue,
  headerValues,
  parseSipMessage,
  type SipRequest,
  type SipResponse,
} from '../../functions/lib/probe/parser.ts';

export type SipMessage = SipRequest | SipResponse;

export interface Received {
  readonly message: SipMessage;
  readonly from: RemoteInfo;
}

/**
 * A SIP peer on a UDP socket of its own (a carrier, Genesys, a stranger):
 * it sends what a test writes and keeps what arrives, parsed.
 */
export class UdpPeer {
  readonly address: string;
  port = 0;
  private readonly socket: Socket;
  private readonly inbox: Received[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(address: string) {
    this.address = address;
    this.socket = createSocket('udp4');
    this.socket.on('message', (data, from) => {
      const message = parseSipMessage(data);
      if (message.kind !== 'invalid') {
        this.inbox.push({ message, from });
        for (const wake of this.waiters) {
          wake();
        }
      }
    });
  }

  static async bind(address: string): Promise<UdpPeer> {
    const peer = new UdpPeer(address);
    await new Promise<void>((done, fail) => {
      peer.socket.once('error', fail);
      peer.socket.bind(0, address, () => {
        peer.port = peer.socket.address().port;
        done();
      });
    });
    return peer;
  }

  send(text: string, port: number, address: string): Promise<void> {
    return new Promise((done, fail) =>
      this.socket.send(text, port, address, (error) =>
        error ? fail(error) : done(),
      ),
    );
  }

  /** The first message that matches, waiting up to `timeoutMs` for it. */
  next(
    matches: (message: SipMessage) => boolean,
    timeoutMs = 5000,
  ): Promise<Received | undefined> {
    const take = () => {
      const index = this.inbox.findIndex((item) => matches(item.message));
      return index === -1 ? undefined : this.inbox.splice(index, 1)[0];
    };
    const found = take();
    if (found !== undefined) {
      return Promise.resolve(found);
    }
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        done(undefined);
      }, timeoutMs);
      const wake = () => {
        const item = take();
        if (item !== undefined) {
          clearTimeout(timer);
          this.waiters.delete(wake);
          done(item);
        }
      };
      this.waiters.add(wake);
    });
  }

  close(): Promise<void> {
    return new Promise((done) => this.socket.close(() => done()));
  }
}

export function isRequest(method: string) {
  return (message: SipMessage): message is SipRequest =>
    message.kind === 'request' && message.method === method;
}

export function isResponse(status: number, method?: string) {
  return (message: SipMessage): message is SipResponse =>
    message.kind === 'response' &&
    message.status === status &&
    (method === undefined ||
      (headerValue(message, 'cseq') ?? '').endsWith(` ${method}`));
}

export function token(): string {
  return randomBytes(6).toString('hex');
}

/** An audio offer or answer: PCMU and telephone-event, plain or SDES. */
export function sdp(
  address: string,
  port: number,
  crypto?: { suite: string },
): string {
  const lines = [
    'v=0',
    `o=- ${Date.now()} 1 IN IP4 ${address}`,
    's=-',
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} ${crypto ? 'RTP/SAVP' : 'RTP/AVP'} 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=sendrecv',
  ];
  if (crypto !== undefined) {
    const key = randomBytes(30).toString('base64');
    lines.push(`a=crypto:1 ${crypto.suite} inline:${key}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** A request with the headers RFC 3261 asks for; `uri` has no brackets. */
export function request(options: {
  method: string;
  uri: string;
  via: { address: string; port: number; branch: string };
  from: string;
  to: string;
  callId: string;
  contact?: string;
  userAgent?: string;
  body?: string;
}): string {
  const body = options.body ?? '';
  const lines = [
    `${options.method} ${options.uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${options.via.address}:${options.via.port}` +
      `;branch=${options.via.branch};rport`,
    'Max-Forwards: 70',
    `From: ${options.from}`,
    `To: ${options.to}`,
    `Call-ID: ${options.callId}`,
    `CSeq: 1 ${options.method}`,
    ...(options.contact ? [`Contact: ${options.contact}`] : []),
    ...(options.userAgent ? [`User-Agent: ${options.userAgent}`] : []),
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A response to `to`, echoing its Via, Record-Route, From, Call-ID, CSeq. */
export function response(
  to: SipRequest,
  status: number,
  reason: string,
  extra: { toTag?: string; contact?: string; body?: string } = {},
): string {
  const body = extra.body ?? '';
  const echo = (name: string, header: string) =>
    to.headers
      .filter((h) => h.name === name)
      .map((h) => `${header}: ${h.value}`);
  const toHeader = headerValue(to, 'to') ?? '';
  const lines = [
    `SIP/2.0 ${status} ${reason}`,
    ...echo('via', 'Via'),
    ...echo('record-route', 'Record-Route'),
    `From: ${headerValue(to, 'from')}`,
    `To: ${extra.toTag ? `${toHeader};tag=${extra.toTag}` : toHeader}`,
    `Call-ID: ${headerValue(to, 'call-id')}`,
    `CSeq: ${headerValue(to, 'cseq')}`,
    ...(extra.contact ? [`Contact: ${extra.contact}`] : []),
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export { headerValue, headerValues };
