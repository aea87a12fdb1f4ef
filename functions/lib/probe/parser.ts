/**
 * A tolerant SIP message parser and a stream framer. Both face whatever a
 * host on the network sends back, so neither throws: garbage yields an
 * `invalid` result with a reason, never an exception.
 */

export interface SipHeader {
  /** Lower-case full name (compact forms expanded: `v` becomes `via`). */
  readonly name: string;
  readonly value: string;
}

interface SipMessageBase {
  readonly headers: readonly SipHeader[];
  readonly body: string;
}

export interface SipResponse extends SipMessageBase {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
}

export interface SipRequest extends SipMessageBase {
  readonly kind: 'request';
  readonly method: string;
  readonly uri: string;
}

export interface SipInvalid {
  readonly kind: 'invalid';
  readonly reason: string;
}

export type SipParseResult = SipResponse | SipRequest | SipInvalid;

/** Largest message accepted: a UDP datagram cannot be larger. */
export const MAX_MESSAGE_BYTES = 65_535;

const COMPACT_NAMES: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  u: 'allow-events',
};

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const STATUS_LINE = /^SIP\/2\.0 ([1-6][0-9]{2})(?: (.*))?$/;
const REQUEST_LINE = /^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP\/2\.0$/;

/** The canonical lower-case name of a header, compact forms expanded. */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT_NAMES[lower] ?? lower;
}

/** Parses one SIP message (a datagram, or a frame cut from a stream). */
export function parseSipMessage(input: string | Uint8Array): SipParseResult {
  const text =
    typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  if (text.length === 0) {
    return invalid('empty message');
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) {
    return invalid(`larger than ${MAX_MESSAGE_BYTES} bytes`);
  }

  const end = findHeaderEnd(text);
  if (end === undefined) {
    return invalid('no empty line after the headers');
  }
  const lines = text.slice(0, end.index).split(/\r?\n/);
  const startLine = lines.shift() ?? '';
  const headers = parseHeaderLines(lines);
  if (typeof headers === 'string') {
    return invalid(headers);
  }
  const body = bodyOf(text.slice(end.index + end.length), headers);
  if (typeof body !== 'object') {
    return invalid(body);
  }

  const status = STATUS_LINE.exec(startLine);
  if (status !== null) {
    return {
      kind: 'response',
      status: Number(status[1]),
      reason: status[2] ?? '',
      headers,
      body: body.text,
    };
  }
  const request = REQUEST_LINE.exec(startLine);
  if (request !== null) {
    return {
      kind: 'request',
      method: request[1] ?? '',
      uri: request[2] ?? '',
      headers,
      body: body.text,
    };
  }
  return invalid(`not a SIP start line: ${quote(startLine)}`);
}

/** The first value of a header, or undefined. */
export function headerValue(
  message: SipResponse | SipRequest,
  name: string,
): string | undefined {
  const wanted = canonicalHeaderName(name);
  return message.headers.find((header) => header.name === wanted)?.value;
}

/**
 * Every value of a header, in order, with comma-separated lists split
 * (commas inside quotes or angle brackets do not split).
 */
export function headerValues(
  message: SipResponse | SipRequest,
  name: string,
): string[] {
  const wanted = canonicalHeaderName(name);
  return message.headers
    .filter((header) => header.name === wanted)
    .flatMap((header) => splitList(header.value));
}

export interface Via {
  readonly transport: string;
  readonly sentBy: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses one Via value (`SIP/2.0/UDP host:port;branch=...`). */
export function parseVia(value: string): Via | undefined {
  const match = /^SIP\s*\/\s*2\.0\s*\/\s*(\S+)\s+([^;\s]+)\s*(.*)$/i.exec(
    value.trim(),
  );
  if (match === null) {
    return undefined;
  }
  return {
    transport: (match[1] ?? '').toUpperCase(),
    sentBy: match[2] ?? '',
    params: parseParams(match[3] ?? ''),
  };
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** Parses a CSeq value (`1 OPTIONS`). */
export function parseCSeq(value: string): CSeq | undefined {
  const match = /^([0-9]{1,10})\s+(\S+)$/.exec(value.trim());
  if (match === null || !TOKEN.test(match[2] ?? '')) {
    return undefined;
  }
  return { seq: Number(match[1]), method: match[2] ?? '' };
}

export type FramedItem =
  | { readonly kind: 'message'; readonly bytes: Buffer }
  | { readonly kind: 'error'; readonly reason: string };

/**
 * Cuts SIP messages out of a TCP or TLS byte stream: headers up to the
 * empty line, then Content-Length bytes of body. Keep-alive CRLFs between
 * messages are skipped. After a framing error the stream cannot be trusted:
 * the framer reports it once and ignores everything after.
 */
export class SipStreamFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private broken = false;
  private readonly maxBytes: number;

  constructor(maxBytes: number = MAX_MESSAGE_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** Bytes received and not yet part of a complete message. */
  get pending(): number {
    return this.buffer.length;
  }

  push(chunk: Uint8Array): FramedItem[] {
    if (this.broken) {
      return [];
    }
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const items: FramedItem[] = [];
    for (;;) {
      this.skipKeepAlives();
      const item = this.next();
      if (item === undefined) {
        return items;
      }
      items.push(item);
      if (item.kind === 'error') {
        this.broken = true;
        this.buffer = Buffer.alloc(0);
        return items;
      }
    }
  }

  private skipKeepAlives(): void {
    let start = 0;
    while (
      start < this.buffer.length &&
      (this.buffer[start] === 0x0d || this.buffer[start] === 0x0a)
    ) {
      start += 1;
    }
    if (start > 0) {
      this.buffer = this.buffer.subarray(start);
    }
  }

  private next(): FramedItem | undefined {
    const end = findHeaderEnd(this.buffer.toString('latin1'));
    if (end === undefined) {
      if (this.buffer.length > this.maxBytes) {
        return frameError(`no end of headers within ${this.maxBytes} bytes`);
      }
      return undefined;
    }

    const head = this.buffer.subarray(0, end.index).toString('latin1');
    const length = contentLengthOf(head.split(/\r?\n/).slice(1));
    if (typeof length === 'string') {
      return frameError(length);
    }
    const total = end.index + end.length + length;
    if (total > this.maxBytes) {
      return frameError(`message of ${total} bytes exceeds ${this.maxBytes}`);
    }
    if (this.buffer.length < total) {
      return undefined;
    }

    const bytes = Buffer.from(this.buffer.subarray(0, total));
    this.buffer = this.buffer.subarray(total);
    return { kind: 'message', bytes };
  }
}

function frameError(reason: string): FramedItem {
  return { kind: 'error', reason };
}

function invalid(reason: string): SipInvalid {
  return { kind: 'invalid', reason };
}

/** Where the headers end: the first empty line (CRLF, or a bare LF). */
function findHeaderEnd(
  text: string,
): { index: number; length: number } | undefined {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  if (crlf === -1 && lf === -1) {
    return undefined;
  }
  if (lf === -1 || (crlf !== -1 && crlf < lf)) {
    return { index: crlf, length: 4 };
  }
  return { index: lf, length: 2 };
}

/** Header lines to headers; folded lines join the header above them. */
function parseHeaderLines(lines: string[]): SipHeader[] | string {
  const headers: { name: string; value: string }[] = [];
  for (const [index, line] of lines.entries()) {
    const last = headers.at(-1);
    if (/^[ \t]/.test(line) && last !== undefined) {
      last.value = `${last.value} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).trim();
    if (!TOKEN.test(name)) {
      return `header line ${index + 1} is not NAME: VALUE: ${quote(line)}`;
    }
    headers.push({
      name: canonicalHeaderName(name),
      value: line.slice(colon + 1).trim(),
    });
  }
  return headers;
}

/** The body, cut to Content-Length when the header is present. */
function bodyOf(
  rest: string,
  headers: readonly SipHeader[],
): { text: string } | string {
  const length = contentLengthOf(
    headers
      .filter((header) => header.name === 'content-length')
      .map((header) => `content-length: ${header.value}`),
  );
  if (typeof length === 'string') {
    return length;
  }
  const bytes = Buffer.from(rest, 'utf8');
  const declared = headers.some((header) => header.name === 'content-length');
  if (!declared) {
    return { text: rest };
  }
  if (bytes.length < length) {
    return `body has ${bytes.length} bytes, Content-Length says ${length}`;
  }
  return { text: bytes.subarray(0, length).toString('utf8') };
}

/**
 * The Content-Length declared in raw header lines: 0 when absent, a reason
 * when malformed or declared twice with different values.
 */
function contentLengthOf(lines: readonly string[]): number | string {
  const values = new Set<string>();
  for (const line of lines) {
    const match = /^(content-length|l)[ \t]*:(.*)$/i.exec(line);
    if (match !== null) {
      values.add((match[2] ?? '').trim());
    }
  }
  if (values.size === 0) {
    return 0;
  }
  if (values.size > 1) {
    return `conflicting Content-Length values: ${[...values].join(', ')}`;
  }
  const [value = ''] = values;
  if (!/^[0-9]{1,9}$/.test(value)) {
    return `Content-Length is not a byte count: ${quote(value)}`;
  }
  return Number(value);
}

/** `;name=value;flag` to a map (a flag maps to the empty string). */
function parseParams(text: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const part of text.split(';')) {
    const trimmed = part.trim();
    if (trimmed.length === 0) {
      continue;
    }
    const equals = trimmed.indexOf('=');
    const name = (equals === -1 ? trimmed : trimmed.slice(0, equals))
      .trim()
      .toLowerCase();
    const value = equals === -1 ? '' : trimmed.slice(equals + 1).trim();
    if (name.length > 0 && !Object.hasOwn(params, name)) {
      params[name] = value;
    }
  }
  return params;
}

/** Splits a header list on commas outside quotes and angle brackets. */
function splitList(value: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i += 1) {
    const char = value[i] ?? '';
    if (quoted && char === '\\') {
      current += char + (value[i + 1] ?? '');
      i += 1;
      continue;
    }
    if (char === '"') {
      quoted = !quoted;
    } else if (!quoted && char === '<') {
      angle += 1;
    } else if (!quoted && char === '>' && angle > 0) {
      angle -= 1;
    } else if (!quoted && angle === 0 && char === ',') {
      items.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  items.push(current.trim());
  return items.filter((item) => item.length > 0);
}

/** A short, printable excerpt of untrusted text for a reason. */
function quote(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(
    printable.length > 60 ? `${printable.slice(0, 60)}...` : printable,
  );
}
