import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BRANCH_COOKIE,
  buildOptions,
  matchesRequest,
} from '../../functions/lib/probe/message.ts';
import {
  headerValue,
  headerValues,
  parseCSeq,
  parseSipMessage,
  parseVia,
  type SipResponse,
  SipStreamFramer,
} from '../../functions/lib/probe/parser.ts';

const OK = [
  'SIP/2.0 200 OK',
  'Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc;rport=5062',
  'v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKother',
  'From: <sip:probe@127.0.0.1>;tag=1',
  'To: <sip:sbc.test.example>;tag=2',
  'i: call-1',
  'CSeq: 1 OPTIONS',
  'Server: kamailio',
  'l: 0',
  '',
  '',
].join('\r\n');

function response(text: string): SipResponse {
  const parsed = parseSipMessage(text);
  if (parsed.kind !== 'response') {
    throw new Error(`expected a response, got ${JSON.stringify(parsed)}`);
  }
  return parsed;
}

/** Header names, values and bodies a valid message may carry. */
const headerArb = fc.record({
  name: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
  value: fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,40}[\x21-\x7e])?$/),
});
const responseArb = fc.record({
  status: fc.integer({ min: 100, max: 699 }),
  reason: fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,20}$/),
  headers: fc.array(headerArb, { maxLength: 8 }),
  body: fc.string({ maxLength: 200 }),
});

interface GeneratedResponse {
  status: number;
  reason: string;
  headers: { name: string; value: string }[];
  body: string;
}

function render(message: GeneratedResponse): string {
  const headers = message.headers
    .filter((h) => !/^(content-length|l)$/i.test(h.name))
    .map((h) => `${h.name}: ${h.value}`);
  const length = Buffer.byteLength(message.body, 'utf8');
  return [
    `SIP/2.0 ${message.status} ${message.reason}`,
    ...headers,
    `Content-Length: ${length}`,
    '',
    message.body,
  ].join('\r\n');
}

describe('parseSipMessage', () => {
  it('reads the status, reason and headers of a response', () => {
    // Act
    const parsed = response(OK);

    // Assess
    expect(parsed.status).toBe(200);
    expect(parsed.reason).toBe('OK');
    expect(headerValue(parsed, 'call-id')).toBe('call-1');
    expect(headerValue(parsed, 'Content-Length')).toBe('0');
    expect(headerValues(parsed, 'via')).toHaveLength(2);
  });

  it('joins folded header lines and splits comma lists outside quotes', () => {
    // Prepare
    const text = [
      'SIP/2.0 100 Trying',
      'Via: SIP/2.0/TCP a;branch=z9hG4bK1,',
      '  SIP/2.0/TCP b;branch=z9hG4bK2',
      'Contact: "Doe, John" <sip:j@a>, <sip:k@b;x=1,2>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');

    // Act
    const parsed = response(text);

    // Assess
    expect(headerValues(parsed, 'via')).toEqual([
      'SIP/2.0/TCP a;branch=z9hG4bK1',
      'SIP/2.0/TCP b;branch=z9hG4bK2',
    ]);
    expect(headerValues(parsed, 'contact')).toEqual([
      '"Doe, John" <sip:j@a>',
      '<sip:k@b;x=1,2>',
    ]);
  });

  it('cuts the body to Content-Length counted in bytes', () => {
    // Prepare
    const text = 'SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nhé!xtra';

    // Act
    const parsed = response(text);

    // Assess
    expect(parsed.body).toBe('hé!');
  });

  it('reads a request line', () => {
    // Act
    const parsed = parseSipMessage(
      'OPTIONS sip:a.example SIP/2.0\r\nContent-Length: 0\r\n\r\n',
    );

    // Assess
    expect(parsed).toMatchObject({
      kind: 'request',
      method: 'OPTIONS',
      uri: 'sip:a.example',
    });
  });

  it.each([
    ['', 'empty message'],
    ['SIP/2.0 200 OK\r\nContent-Length: 0\r\n', 'no empty line'],
    ['HTTP/1.1 200 OK\r\n\r\n', 'not a SIP start line'],
    ['SIP/2.0 20 OK\r\n\r\n', 'not a SIP start line'],
    ['SIP/2.0 200 OK\r\nno colon here\r\n\r\n', 'not NAME: VALUE'],
    ['SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n', 'not a byte count'],
    ['SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\nshort', 'Content-Length'],
    ['SIP/2.0 200 OK\r\nl: 1\r\nl: 2\r\n\r\nab', 'conflicting'],
  ])('rejects %j with a reason', (text, reason) => {
    // Act
    const parsed = parseSipMessage(text);

    // Assess
    expect(parsed.kind).toBe('invalid');
    expect(parsed.kind === 'invalid' && parsed.reason).toContain(reason);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const parsed = parseSipMessage(bytes);
        expect(['response', 'request', 'invalid']).toContain(parsed.kind);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on text that looks almost like SIP', () => {
    const fragment = fc.constantFrom(
      'SIP/2.0 ',
      '200',
      ' OK',
      '\r\n',
      '\n',
      ':',
      ' ',
      '\t',
      'Via',
      'v',
      'Content-Length',
      'l',
      '-1',
      '99999999999',
      ';branch=',
      ',',
      '"',
      '<',
      '>',
      '\\',
      '\u0000',
      'é',
    );
    fc.assert(
      fc.property(
        fc.array(fragment, { maxLength: 60 }).map((parts) => parts.join('')),
        (text) => {
          const parsed = parseSipMessage(text);
          if (parsed.kind !== 'invalid') {
            headerValues(parsed, 'via').map(parseVia);
            parseCSeq(headerValue(parsed, 'cseq') ?? '');
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('reads back any well-formed response it is given', () => {
    fc.assert(
      fc.property(responseArb, (message) => {
        const parsed = response(render(message));
        expect(parsed.status).toBe(message.status);
        expect(parsed.reason).toBe(message.reason);
        expect(parsed.body).toBe(message.body);
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseVia', () => {
  it('reads the transport, sent-by and parameters', () => {
    // Act
    const via = parseVia('SIP/2.0/tls [::1]:5061;branch=z9hG4bKx;rport');

    // Assess
    expect(via).toEqual({
      transport: 'TLS',
      sentBy: '[::1]:5061',
      params: { branch: 'z9hG4bKx', rport: '' },
    });
  });

  it('returns undefined for a value that is not a Via', () => {
    expect(parseVia('garbage')).toBeUndefined();
  });
});

describe('SipStreamFramer', () => {
  const two = `${OK}\r\n${OK.replace('l: 0', 'l: 5')}hello`;

  it('cuts messages at Content-Length and skips keep-alive CRLFs', () => {
    // Prepare
    const framer = new SipStreamFramer();

    // Act
    const items = framer.push(Buffer.from(`\r\n\r\n${two}`));

    // Assess
    expect(items.map((item) => item.kind)).toEqual(['message', 'message']);
    const second = items[1];
    const parsed =
      second?.kind === 'message'
        ? response(second.bytes.toString())
        : undefined;
    expect(parsed?.body).toBe('hello');
    expect(framer.pending).toBe(0);
  });

  it('yields the same messages however the stream is split', () => {
    const bytes = Buffer.from(two);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), {
          maxLength: 12,
        }),
        (cuts) => {
          const framer = new SipStreamFramer();
          const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
          const frames = points
            .slice(1)
            .flatMap((end, i) => framer.push(bytes.subarray(points[i], end)));
          expect(
            frames.map((f) => (f.kind === 'message' ? f.bytes.length : -1)),
          ).toEqual([OK.length, OK.length + 5]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a framing error once and ignores the rest', () => {
    // Prepare
    const framer = new SipStreamFramer();

    // Act
    const first = framer.push(
      Buffer.from('SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n'),
    );
    const later = framer.push(Buffer.from(OK));

    // Assess
    expect(first).toEqual([
      { kind: 'error', reason: expect.stringContaining('Content-Length') },
    ]);
    expect(later).toEqual([]);
  });

  it('gives up on headers that never end within the limit', () => {
    // Prepare
    const framer = new SipStreamFramer(1024);

    // Act
    const items = framer.push(Buffer.alloc(2048, 'a'));

    // Assess
    expect(items).toEqual([
      { kind: 'error', reason: 'no end of headers within 1024 bytes' },
    ]);
  });

  it('never throws and never holds more than its limit, whatever arrives', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 20 }),
        (chunks) => {
          const framer = new SipStreamFramer(4096);
          for (const chunk of chunks) {
            for (const item of framer.push(chunk)) {
              if (item.kind === 'message') {
                parseSipMessage(item.bytes);
              }
            }
            expect(framer.pending).toBeLessThanOrEqual(4096 + 700);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('buildOptions', () => {
  const target = {
    transport: 'TLS' as const,
    uriHost: 'sbc.test.example',
    port: 5061,
    localAddress: '::1',
    localPort: 40000,
  };

  it('builds an OPTIONS the parser reads as valid RFC 3261', () => {
    // Act
    const request = buildOptions(target);
    const parsed = parseSipMessage(request.text);

    // Assess
    expect(parsed.kind).toBe('request');
    if (parsed.kind !== 'request') {
      return;
    }
    expect(parsed.method).toBe('OPTIONS');
    expect(parsed.uri).toBe('sip:sbc.test.example:5061;transport=tls');
    expect(parsed.uri).not.toContain('@');
    const via = parseVia(headerValues(parsed, 'via')[0] ?? '');
    expect(via?.transport).toBe('TLS');
    expect(via?.sentBy).toBe('[::1]:40000');
    expect(via?.params.branch?.startsWith(BRANCH_COOKIE)).toBe(true);
    expect(via?.params).toHaveProperty('rport');
    expect(headerValue(parsed, 'max-forwards')).toBe('70');
    expect(headerValue(parsed, 'from')).toMatch(/;tag=[0-9a-f]+$/);
    expect(headerValue(parsed, 'cseq')).toBe('1 OPTIONS');
    expect(headerValue(parsed, 'accept')).toBe('application/sdp');
    expect(headerValue(parsed, 'content-length')).toBe('0');
    expect(headerValue(parsed, 'user-agent')).not.toMatch(/scanner|vicious/i);
    expect(request.text.endsWith('\r\n\r\n')).toBe(true);
    expect(request.text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });

  it('uses a fresh branch, tag and Call-ID for every request', () => {
    // Act
    const requests = Array.from({ length: 50 }, () => buildOptions(target));

    // Assess
    for (const key of ['branch', 'fromTag', 'callId'] as const) {
      expect(new Set(requests.map((r) => r[key])).size).toBe(50);
    }
  });

  it('leaves the transport parameter out over UDP', () => {
    // Act
    const request = buildOptions({ ...target, transport: 'UDP', port: 5060 });

    // Assess
    expect(request.text.split('\r\n')[0]).toBe(
      'OPTIONS sip:sbc.test.example:5060 SIP/2.0',
    );
  });
});

describe('matchesRequest', () => {
  const request = buildOptions({
    transport: 'UDP',
    uriHost: 'sbc.test.example',
    port: 5060,
    localAddress: '127.0.0.1',
    localPort: 5062,
  });
  const answer = (overrides: {
    branch?: string;
    callId?: string;
    cseq?: string;
  }) =>
    response(
      [
        'SIP/2.0 200 OK',
        `Via: SIP/2.0/UDP 127.0.0.1:5062;branch=${overrides.branch ?? request.branch}`,
        `Call-ID: ${overrides.callId ?? request.callId}`,
        `CSeq: ${overrides.cseq ?? '1 OPTIONS'}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );

  it('accepts the response to this request', () => {
    expect(matchesRequest(answer({}), request)).toBe(true);
  });

  it.each([
    ['another branch', { branch: 'z9hG4bKelse' }],
    ['another Call-ID', { callId: 'else' }],
    ['another CSeq method', { cseq: '1 INVITE' }],
    ['another CSeq number', { cseq: '2 OPTIONS' }],
  ])('rejects a response with %s', (_, overrides) => {
    expect(matchesRequest(answer(overrides), request)).toBe(false);
  });
});
