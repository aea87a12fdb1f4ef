import dgram from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runProbe } from '../../functions/lib/probe/index.ts';
import {
  headerValue,
  headerValues,
  parseSipMessage,
} from '../../functions/lib/probe/parser.ts';
import {
  connectTcp,
  optionsOverStream,
  optionsOverUdp,
  TIMER_T1_MS,
} from '../../functions/lib/probe/transports.ts';

/**
 * Real sockets on loopback against small scripted SIP peers, for what a
 * Kamailio cannot be made to do on demand: drop one datagram, answer in
 * pieces, send stray or broken messages.
 */

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) {
    await cleanup();
  }
});

/** A response to `request` that echoes Via, Call-ID, CSeq, From and To. */
function answerTo(
  request: Buffer | string,
  status: string,
  options: { body?: string; branch?: string } = {},
): string {
  const parsed = parseSipMessage(request);
  if (parsed.kind !== 'request') {
    throw new Error('the probe sent something that is not a request');
  }
  const via = (headerValues(parsed, 'via')[0] ?? '').replace(
    /branch=[^;]+/,
    (branch) => (options.branch ? `branch=${options.branch}` : branch),
  );
  const body = options.body ?? '';
  return [
    `SIP/2.0 ${status}`,
    `Via: ${via}`,
    `From: ${headerValue(parsed, 'from')}`,
    `To: ${headerValue(parsed, 'to')};tag=peer`,
    `Call-ID: ${headerValue(parsed, 'call-id')}`,
    `CSeq: ${headerValue(parsed, 'cseq')}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

async function udpPeer(
  onRequest: (request: Buffer, reply: (text: string) => void) => void,
): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, remote) => {
    onRequest(message, (text) =>
      socket.send(text, remote.port, remote.address),
    );
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => socket.close(() => resolve())));
  return socket.address().port;
}

async function tcpPeer(
  onConnection: (socket: Socket) => void,
): Promise<number> {
  const server: Server = createServer(onConnection);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const socket of sockets) {
      socket.destroy();
    }
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

async function exchangeOverTcp(port: number, timeoutMs: number) {
  const connection = await connectTcp({ address: '127.0.0.1', port }, 2000);
  if (connection.kind !== 'connected') {
    throw new Error(`cannot connect: ${connection.message}`);
  }
  try {
    return await optionsOverStream(
      connection.socket,
      'TCP',
      'sbc.test.example',
      timeoutMs,
    );
  } finally {
    connection.socket.destroy();
  }
}

describe('optionsOverUdp', () => {
  it('retransmits after T1 when the first datagram is lost', async () => {
    // Prepare
    const seen: Buffer[] = [];
    const port = await udpPeer((request, reply) => {
      seen.push(request);
      if (seen.length === 2) {
        reply(answerTo(request, '200 OK'));
      }
    });

    // Act
    const outcome = await optionsOverUdp(
      { address: '127.0.0.1', port },
      'sbc.test.example',
      3000,
    );

    // Assess
    expect(outcome).toMatchObject({ kind: 'answered', transmissions: 2 });
    expect(
      outcome.kind === 'answered' && outcome.answerMs,
    ).toBeGreaterThanOrEqual(TIMER_T1_MS);
    expect(seen[1]?.toString()).toBe(seen[0]?.toString());
  });

  it('skips stray datagrams and provisional answers for the final one', async () => {
    // Prepare
    const port = await udpPeer((request, reply) => {
      reply('garbage');
      reply(answerTo(request, '200 OK', { branch: 'z9hG4bKsomeoneelse' }));
      reply(answerTo(request, '100 Trying'));
      reply(answerTo(request, '200 OK'));
    });

    // Act
    const outcome = await optionsOverUdp(
      { address: '127.0.0.1', port },
      'sbc.test.example',
      3000,
    );

    // Assess
    expect(outcome).toMatchObject({
      kind: 'answered',
      stray: 2,
      provisional: 1,
      transmissions: 1,
    });
  });

  it('accepts a large datagram', async () => {
    // Prepare
    const body = 'v=0\r\n'.padEnd(30_000, 'x');
    const port = await udpPeer((request, reply) => {
      reply(answerTo(request, '200 OK', { body }));
    });

    // Act
    const outcome = await optionsOverUdp(
      { address: '127.0.0.1', port },
      'sbc.test.example',
      3000,
    );

    // Assess
    expect(outcome.kind === 'answered' && outcome.response.body).toBe(body);
  });

  it('reports a closed port from the ICMP answer, without waiting', async () => {
    // Prepare
    const port = await udpPeer(() => undefined);
    await cleanups.pop()?.();

    // Act
    const outcome = await optionsOverUdp(
      { address: '127.0.0.1', port },
      'sbc.test.example',
      30_000,
    );

    // Assess
    expect(outcome).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED' });
  });

  it('gives up at the deadline, having retransmitted, when nothing answers', async () => {
    // Prepare
    let received = 0;
    const port = await udpPeer(() => {
      received += 1;
    });

    // Act
    const outcome = await optionsOverUdp(
      { address: '127.0.0.1', port },
      'sbc.test.example',
      1200,
    );

    // Assess
    expect(outcome).toMatchObject({
      kind: 'timeout',
      message: 'no answer within 1200 ms',
    });
    expect(outcome.transmissions).toBeGreaterThan(1);
    expect(received).toBe(outcome.transmissions);
  });
});

describe('optionsOverStream', () => {
  it('frames an answer that arrives byte by byte after a 100 Trying', async () => {
    // Prepare
    const port = await tcpPeer((socket) => {
      socket.once('data', async (request) => {
        const bytes = Buffer.from(
          `\r\n${answerTo(request, '100 Trying')}${answerTo(request, '200 OK', {
            body: 'ok',
          })}`,
        );
        for (const byte of bytes) {
          socket.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
    });

    // Act
    const outcome = await exchangeOverTcp(port, 5000);

    // Assess
    expect(outcome).toMatchObject({ kind: 'answered', provisional: 1 });
    expect(outcome.kind === 'answered' && outcome.response.body).toBe('ok');
  });

  it('times out when the answer is slower than the deadline', async () => {
    // Prepare
    const port = await tcpPeer((socket) => {
      socket.once('data', (request) => {
        setTimeout(() => socket.write(answerTo(request, '200 OK')), 1000);
      });
    });

    // Act
    const outcome = await exchangeOverTcp(port, 200);

    // Assess
    expect(outcome).toMatchObject({
      kind: 'timeout',
      stage: 'exchange',
      message: 'no answer within 200 ms',
    });
  });

  it('says so when the peer closes the connection without answering', async () => {
    // Prepare
    const port = await tcpPeer((socket) => {
      socket.once('data', () => socket.end());
    });

    // Act
    const outcome = await exchangeOverTcp(port, 5000);

    // Assess
    expect(outcome).toMatchObject({ kind: 'failed', code: 'CLOSED' });
  });

  it('stops at an answer that cannot be framed', async () => {
    // Prepare
    const port = await tcpPeer((socket) => {
      socket.once('data', () =>
        socket.write('SIP/2.0 200 OK\r\nContent-Length: many\r\n\r\n'),
      );
    });

    // Act
    const outcome = await exchangeOverTcp(port, 5000);

    // Assess
    expect(outcome).toMatchObject({ kind: 'failed', code: 'UNFRAMEABLE' });
    expect(outcome.kind === 'failed' && outcome.message).toContain(
      'Content-Length',
    );
  });
});

describe('connectTcp', () => {
  it('reports a refused connection', async () => {
    // Prepare
    const port = await tcpPeer(() => undefined);
    await cleanups.pop()?.();

    // Act
    const outcome = await connectTcp({ address: '127.0.0.1', port }, 2000);

    // Assess
    expect(outcome).toMatchObject({
      kind: 'refused',
      stage: 'connect',
      code: 'ECONNREFUSED',
    });
  });
});

describe('runProbe with a scripted UDP peer', () => {
  it('strips control characters from what the peer says', async () => {
    // Prepare
    const port = await udpPeer((request, reply) => {
      reply(
        answerTo(request, '503 Busy\u001b[2J\u0007').replace(
          'Content-Length',
          'Server: evil\u001b]0;title\u0007\r\nContent-Length',
        ),
      );
    });

    // Act
    const report = await runProbe({
      host: '127.0.0.1',
      udpPort: port,
      tcpPort: port,
      tlsPort: port,
      timeoutMs: 1000,
    });

    // Assess
    const udp = report.checks.find((c) => c.name === 'sip-options-udp');
    expect(udp?.detail).toMatch(/^503 Busy\?\[2J\? over UDP: /);
    expect(udp?.figures.server).toBe('evil?]0;title?');
    expect(JSON.stringify(report)).not.toMatch(/\\u00(1b|07)/);
  });
});

/** The first three words a text says twice, as "no TLS handshake: no TLS handshake". */
function repeatedPhrase(text: string): string | undefined {
  const words = text
    .toLowerCase()
    .split(/[^a-z0-9.]+/)
    .filter((word) => word.length > 0);
  const seen = new Set<string>();
  for (let start = 0; start + 3 <= words.length; start += 1) {
    const phrase = words.slice(start, start + 3).join(' ');
    if (seen.has(phrase)) {
      return phrase;
    }
    seen.add(phrase);
  }
  return undefined;
}

describe('runProbe details when there is no TLS to judge', () => {
  async function probeTcp(port: number, udpPort: number) {
    return runProbe({
      host: '127.0.0.1',
      udpPort,
      tcpPort: port,
      tlsPort: port,
      timeoutMs: 1000,
    });
  }

  async function refusedPort(): Promise<number> {
    const port = await tcpPeer(() => undefined);
    await cleanups.pop()?.();
    return port;
  }

  it.each([
    [
      'a peer that accepts and stays silent',
      () => tcpPeer(() => undefined),
      'no certificate to judge: no TLS handshake within 1000 ms',
    ],
    [
      'a peer that does not speak TLS',
      () =>
        tcpPeer((socket) => {
          socket.on('data', () =>
            socket.end('HTTP/1.0 400 Bad Request\r\n\r\n'),
          );
        }),
      'no certificate to judge: TLS handshake failed: the port does not ' +
        'speak TLS (ERR_SSL_WRONG_VERSION_NUMBER)',
    ],
    [
      'a port where nothing listens',
      refusedPort,
      'no certificate to judge: connection refused: nothing listens',
    ],
  ])('says each thing once for %s', async (_, peer, certificateDetail) => {
    // Prepare
    const port = await peer();
    const udpPort = await refusedPort();

    // Act
    const report = await probeTcp(port, udpPort);

    // Assess
    for (const name of ['tls-chain', 'tls-name', 'tls-expiry']) {
      expect(report.checks.find((c) => c.name === name)?.detail).toBe(
        certificateDetail,
      );
    }
    const repeated = report.checks
      .map((check) => ({
        detail: check.detail,
        phrase: repeatedPhrase(check.detail),
      }))
      .filter((item) => item.phrase !== undefined);
    expect(repeated).toEqual([]);
  });
});
