import { randomBytes, randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';
import {
  headerValue,
  headerValues,
  parseCSeq,
  parseVia,
  type SipResponse,
} from './parser.ts';

export type SipTransport = 'UDP' | 'TCP' | 'TLS';

/** RFC 3261 magic cookie: a branch starting with it is globally unique. */
export const BRANCH_COOKIE = 'z9hG4bK';

/**
 * Says who is asking without resembling a scanner: Kamailio's default
 * script silently drops user agents such as sipvicious or friendly-scanner.
 */
export const USER_AGENT = 'sbc-ami-probe/1';

export interface OptionsTarget {
  readonly transport: SipTransport;
  /** Host part of the Request-URI: the SBC's FQDN (or address). */
  readonly uriHost: string;
  readonly port: number;
  /** Local end of the socket, for Via and From. */
  readonly localAddress: string;
  readonly localPort: number;
}

export interface OptionsRequest {
  readonly text: string;
  readonly branch: string;
  readonly callId: string;
  readonly fromTag: string;
  readonly cseq: number;
}

/**
 * A minimal valid out-of-dialog OPTIONS: fresh branch, tag and Call-ID, a
 * Request-URI without user part (Kamailio answers statelessly only then),
 * and Content-Length, which stream transports need for framing.
 */
export function buildOptions(target: OptionsTarget): OptionsRequest {
  const branch = `${BRANCH_COOKIE}${randomBytes(12).toString('hex')}`;
  const fromTag = randomBytes(6).toString('hex');
  const callId = randomUUID();
  const cseq = 1;
  const host = uriHostPart(target.uriHost);
  const local = uriHostPart(target.localAddress);
  const params =
    target.transport === 'UDP'
      ? ''
      : `;transport=${target.transport.toLowerCase()}`;

  const lines = [
    `OPTIONS sip:${host}:${target.port}${params} SIP/2.0`,
    `Via: SIP/2.0/${target.transport} ${local}:${target.localPort}` +
      `;branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:probe@${local}>;tag=${fromTag}`,
    `To: <sip:${host}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} OPTIONS`,
    `User-Agent: ${USER_AGENT}`,
    'Accept: application/sdp',
    'Content-Length: 0',
  ];
  return {
    text: `${lines.join('\r\n')}\r\n\r\n`,
    branch,
    callId,
    fromTag,
    cseq,
  };
}

/**
 * True when a response belongs to this request: the top Via carries our
 * branch (RFC 3261 17.1.3), and Call-ID and CSeq are ours.
 */
export function matchesRequest(
  response: SipResponse,
  request: OptionsRequest,
): boolean {
  const via = parseVia(headerValues(response, 'via')[0] ?? '');
  const cseq = parseCSeq(headerValue(response, 'cseq') ?? '');
  return (
    via?.params.branch === request.branch &&
    headerValue(response, 'call-id') === request.callId &&
    cseq?.seq === request.cseq &&
    cseq.method === 'OPTIONS'
  );
}

/** A host as it appears in a SIP URI: IPv6 addresses in brackets. */
export function uriHostPart(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}
