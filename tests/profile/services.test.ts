import { createSocket } from 'node:dgram';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import pRetry, { AbortError } from 'p-retry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../../functions/lib/probe/index.ts';
import {
  parseProfile,
  type RenderOptions,
  renderProfile,
  type SipProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  headerValue,
  headerValues,
  isRequest,
  isResponse,
  request,
  response,
  sdp,
  token,
  UdpPeer,
} from './sip-peer.ts';
import {
  type Daemon,
  freePort,
  freePortPair,
  loadProfile,
  makeCertificate,
  rawProfile,
  removeDir,
  run,
  startDaemon,
  tempDir,
  waitForTcp,
} from './support.ts';

const FQDN = 'sbc.example.com';
/** Bound address, as IMDSv2 gives the private one. */
const PRIVATE_IP = '127.0.0.1';
/** Advertised address; on loopback too, so nothing leaves the host. */
const PUBLIC_IP = '127.0.0.4';
/** The peers of the call profile, each on a loopback address of its own. */
const GENESYS_IP = '127.0.0.2';
const CARRIER_IP = '127.0.0.3';
const STRANGER_IP = '127.0.0.5';
const HEALTH_IP = '127.0.0.6';
const CARRIER_B_IP = '127.0.0.7';

const KAMCMD = { command: 'kamcmd', debianPackage: 'kamailio' };
const NEEDS = {
  root: true,
  tools: [TOOLS.kamailio, TOOLS.openssl, TOOLS.rtpengine, KAMCMD],
};

interface Sbc {
  readonly dir: string;
  readonly root: string;
  readonly runDir: string;
  readonly fqdn: string;
  readonly ports: { sip: number; tls: number; rtpengineNg: number };
  readonly certificatePem: string;
  readonly rtpengine: Daemon;
  readonly kamailio: Daemon;
}

/**
 * Renders a profile for loopback and starts the SBC from the tree as the
 * image does: rtpengine first, with the command line of its systemd
 * drop-in, then Kamailio. Ready once `readyFrom` gets OPTIONS answered.
 */
async function startSbc(
  profile: SipProfile,
  readyFrom: UdpPeer,
  options: RenderOptions = {},
): Promise<Sbc> {
  const dir = await tempDir('sbc');
  const root = join(dir, 'tree');
  const runDir = join(dir, 'run');
  const tlsDir = join(dir, 'tls');
  await mkdir(runDir);
  await mkdir(tlsDir, { mode: 0o700 });
  const { pem } = await makeCertificate(tlsDir, profile.sbc.fqdn);
  // Outside the RTP range, which rendering checks the ports against.
  const ports = {
    sip: await freePort(profile.rtp),
    tls: await freePort(profile.rtp),
    // rtpengine's CLI port is the one after its ng port.
    rtpengineNg: await freePortPair(profile.rtp),
  };

  await writeRenderedTree(
    root,
    renderProfile(profile, {
      ...options,
      kamailioDir: join(root, 'etc', 'kamailio'),
      tlsDir,
      runDir,
      sipPorts: { sip: ports.sip, tls: ports.tls },
      rtpengineNgPort: ports.rtpengineNg,
    }),
  );

  const dropIn = await readFile(
    join(root, 'etc/systemd/system/rtpengine-daemon.service.d/10-sbc.conf'),
    'utf8',
  );
  const [command = 'rtpengine', ...args] = execStart(dropIn, {
    SBC_PRIVATE_IP: PRIVATE_IP,
    SBC_PUBLIC_IP: PUBLIC_IP,
  }).map((arg) =>
    arg
      .replace(
        '/etc/rtpengine/rtpengine.conf',
        join(root, 'etc/rtpengine/rtpengine.conf'),
      )
      .replace('/run/rtpengine/rtpengine-daemon.pid', join(dir, 'rtp.pid')),
  );
  const rtpengine = startDaemon(command, args);
  let kamailio: Daemon | undefined;
  const sbc = (): Sbc => ({
    dir,
    root,
    runDir,
    fqdn: profile.sbc.fqdn,
    ports,
    certificatePem: pem,
    rtpengine,
    kamailio: kamailio ?? rtpengine,
  });

  try {
    await pRetry(() => ngPing(ports.rtpengineNg, rtpengine), {
      retries: 30,
      minTimeout: 100,
      maxTimeout: 200,
    });
    kamailio = startDaemon(
      'kamailio',
      [
        '-DD',
        '-E',
        '-Y',
        runDir,
        '-f',
        join(root, 'etc/kamailio/kamailio.cfg'),
      ],
      { SBC_PRIVATE_IP: PRIVATE_IP, SBC_PUBLIC_IP: PUBLIC_IP },
    );
    await waitForTcp(kamailio, ports.tls);
    // The TLS port opens before the workers are up: wait for an answer.
    await pRetry(
      async () => {
        const answer = await ping(readyFrom, sbc(), 500);
        if (answer?.message.kind !== 'response') {
          throw new Error(
            `Kamailio does not answer OPTIONS:\n${kamailio?.output().slice(-2000)}`,
          );
        }
      },
      // Workers can take seconds to start on a loaded machine.
      { retries: 100, minTimeout: 100, maxTimeout: 250, maxRetryTime: 60_000 },
    );
  } catch (error) {
    await stopSbc(sbc());
    throw error;
  }
  return sbc();
}

async function stopSbc(sbc: Sbc | undefined): Promise<void> {
  if (sbc !== undefined) {
    await sbc.kamailio.stop();
    await sbc.rtpengine.stop();
    await removeDir(sbc.dir);
  }
}

/** OPTIONS to the SBC itself from `peer`; the answer, if any. */
async function ping(peer: UdpPeer, sbc: Sbc, timeoutMs = 2000) {
  const branch = `z9hG4bK${token()}`;
  await peer.send(
    request({
      method: 'OPTIONS',
      uri: `sip:${sbc.fqdn}`,
      via: { address: peer.address, port: peer.port, branch },
      from: `<sip:probe@${peer.address}>;tag=${token()}`,
      to: `<sip:${sbc.fqdn}>`,
      callId: token(),
      userAgent: 'sbc-ami-test',
    }),
    sbc.ports.sip,
    PRIVATE_IP,
  );
  return peer.next(
    (message) =>
      message.kind === 'response' &&
      (headerValue(message, 'via') ?? '').includes(branch),
    timeoutMs,
  );
}

/** An INVITE from `peer` for a number behind the SBC. */
function invite(peer: UdpPeer, body: string): { text: string; branch: string } {
  const branch = `z9hG4bK${token()}`;
  return {
    branch,
    text: request({
      method: 'INVITE',
      uri: `sip:+15550100@${FQDN}`,
      via: { address: peer.address, port: peer.port, branch },
      from: `<sip:+15550199@${peer.address}>;tag=${token()}`,
      to: `<sip:+15550100@${FQDN}>`,
      callId: `${token()}@${peer.address}`,
      contact: `<sip:+15550199@${peer.address}:${peer.port}>`,
      body,
    }),
  };
}

/** Sends an ng `ping` to rtpengine; resolves when it says `pong`. */
function ngPing(port: number, daemon: Daemon): Promise<void> {
  if (daemon.exited() !== undefined) {
    throw new AbortError(`rtpengine exited:\n${daemon.output().slice(-2000)}`);
  }
  return new Promise((done, fail) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      fail(new Error('no answer to ng ping'));
    }, 500);
    socket.on('message', (data) => {
      clearTimeout(timer);
      socket.close();
      data.toString().includes('4:pong')
        ? done()
        : fail(new Error(`ng answered ${data}`));
    });
    socket.send('c1 d7:command4:pinge', port, '127.0.0.1');
  });
}

/** The last ExecStart= of a drop-in, with ${VAR} filled in as systemd does. */
function execStart(dropIn: string, env: Record<string, string>): string[] {
  const line = dropIn
    .split('\n')
    .filter((l) => l.startsWith('ExecStart=') && l.length > 'ExecStart='.length)
    .at(-1);
  if (line === undefined) {
    throw new Error('no ExecStart in the drop-in');
  }
  return line
    .slice('ExecStart='.length)
    .replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => env[name] ?? '')
    .split(' ');
}

/** The example profile, its peers moved to loopback addresses. */
function callProfile(
  genesysPort: number,
  carrierPort: number,
  carrierBPort: number,
): SipProfile {
  // biome-ignore lint/suspicious/noExplicitAny: the profile is reshaped field by field before validation
  const raw = rawProfile('example') as Record<string, any>;
  raw.genesys = {
    ...raw.genesys,
    signalingPeers: [`${GENESYS_IP}/32`],
    transport: 'udp',
    termination: { host: GENESYS_IP, port: genesysPort },
  };
  raw.carriers = [
    {
      name: 'carrier-a',
      host: CARRIER_IP,
      port: carrierPort,
      transport: 'udp',
      signalingPeers: [CARRIER_IP],
      media: 'rtp',
    },
    {
      name: 'carrier-b',
      host: CARRIER_B_IP,
      port: carrierBPort,
      transport: 'udp',
      signalingPeers: [CARRIER_B_IP],
      media: 'srtp',
    },
  ];
  raw.rtp = { portMin: 42000, portMax: 42998 };
  raw.sip = {
    healthCheckSources: [`${HEALTH_IP}/32`],
    answerOptionsFromUnknown: true,
  };
  return parseProfile(raw, 'call profile');
}

describeWithSystem('the SBC started from the rendered configs', NEEDS, () => {
  let sbc: Sbc | undefined;
  let genesys: UdpPeer;
  let carrier: UdpPeer;
  let carrierB: UdpPeer;
  let stranger: UdpPeer;
  let health: UdpPeer;

  beforeAll(async () => {
    genesys = await UdpPeer.bind(GENESYS_IP);
    carrier = await UdpPeer.bind(CARRIER_IP);
    carrierB = await UdpPeer.bind(CARRIER_B_IP);
    stranger = await UdpPeer.bind(STRANGER_IP);
    health = await UdpPeer.bind(HEALTH_IP);
    sbc = await startSbc(
      callProfile(genesys.port, carrier.port, carrierB.port),
      health,
    );
  });

  afterAll(async () => {
    await stopSbc(sbc);
    for (const peer of [genesys, carrier, carrierB, stranger, health]) {
      await peer?.close();
    }
  });

  it('answers OPTIONS over UDP, TCP and TLS with 200 and passes the probe', async () => {
    // Act
    const report = await runProbe({
      host: PRIVATE_IP,
      sni: FQDN,
      caPem: sbc?.certificatePem,
      udpPort: sbc?.ports.sip,
      tcpPort: sbc?.ports.sip,
      tlsPort: sbc?.ports.tls,
      minDays: 1,
      timeoutMs: 5000,
    });

    // Assess
    const results = Object.fromEntries(
      report.checks.map((check) => [check.name, check.ok]),
    );
    expect(results, JSON.stringify(report.checks, null, 2)).toMatchObject({
      'sip-options-udp': true,
      'sip-options-tcp': true,
      'sip-options-tls': true,
      'tls-1.0-refused': true,
      'tls-1.1-refused': true,
      'tls-chain': true,
      'tls-name': true,
      'tls-cipher': true,
    });
    expect(report.ok).toBe(true);
  });

  it('refuses TLS 1.1 with a protocol_version alert of its own', async () => {
    // Act
    const outcome = await new Promise<string>((done) => {
      const socket = tls.connect({
        host: PRIVATE_IP,
        port: sbc?.ports.tls,
        servername: FQDN,
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        // OpenSSL offers TLS 1.1 only at security level 0.
        ciphers: 'DEFAULT:@SECLEVEL=0',
        rejectUnauthorized: false,
      });
      socket.once('secureConnect', () => {
        done(`connected with ${socket.getProtocol()}`);
        socket.destroy();
      });
      socket.once('error', (error: NodeJS.ErrnoException) =>
        done(error.code ?? error.message),
      );
    });

    // Assess
    expect(outcome).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('completes TLS 1.2 with the first Genesys suite and no client certificate', async () => {
    // Act
    const session = await new Promise<{ cipher: string; protocol: string }>(
      (done, fail) => {
        const socket = tls.connect({
          host: PRIVATE_IP,
          port: sbc?.ports.tls,
          servername: FQDN,
          ca: sbc?.certificatePem,
          maxVersion: 'TLSv1.2',
          ciphers: 'ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256',
        });
        socket.once('secureConnect', () => {
          done({
            cipher: socket.getCipher().standardName,
            protocol: socket.getProtocol() ?? '',
          });
          socket.destroy();
        });
        socket.once('error', fail);
      },
    );

    // Assess
    expect(session).toEqual({
      cipher: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
      protocol: 'TLSv1.2',
    });
  });

  it('relays a carrier call to Genesys with SRTP and answers it back as RTP', async () => {
    // Prepare
    const offer = invite(carrier, sdp(CARRIER_IP, 40000));

    // Act
    await carrier.send(offer.text, sbc?.ports.sip ?? 0, PRIVATE_IP);
    const atGenesys = await genesys.next(isRequest('INVITE'));
    if (atGenesys?.message.kind !== 'request') {
      throw new Error('Genesys received no INVITE');
    }
    const inv = atGenesys.message;
    await genesys.send(
      response(inv, 200, 'OK', {
        toTag: token(),
        contact: `<sip:${GENESYS_IP}:${genesys.port}>`,
        body: sdp(GENESYS_IP, 40100, { suite: 'AES_CM_128_HMAC_SHA1_80' }),
      }),
      atGenesys.from.port,
      atGenesys.from.address,
    );
    const atCarrier = await carrier.next(isResponse(200, 'INVITE'));

    // Assess: the INVITE Genesys sees
    expect(inv.uri).toBe(`sip:+15550100@${GENESYS_IP}:${genesys.port}`);
    // topoh: the carrier's address shows nowhere but in From.
    const routing = [
      ...headerValues(inv, 'via'),
      ...headerValues(inv, 'record-route'),
      ...headerValues(inv, 'contact'),
    ];
    expect(routing.length).toBeGreaterThan(2);
    for (const value of routing) {
      expect(value).toContain(PUBLIC_IP);
      expect(value).not.toContain(CARRIER_IP);
    }
    expect(inv.body).toMatch(/^m=audio (42\d{3}) RTP\/SAVP 0 101\r$/m);
    expect(inv.body).toContain(`c=IN IP4 ${PUBLIC_IP}`);
    const suites = [...inv.body.matchAll(/^a=crypto:(\d+) (\S+) /gm)].map(
      (match) => `${match[1]} ${match[2]}`,
    );
    expect(suites).toEqual([
      '1 AES_CM_128_HMAC_SHA1_80',
      '2 AES_CM_128_HMAC_SHA1_32',
    ]);
    expect(inv.body).not.toMatch(/a=fingerprint|a=candidate/);

    // Assess: the answer the carrier gets
    if (atCarrier?.message.kind !== 'response') {
      throw new Error('the carrier received no 200 OK');
    }
    const answer = atCarrier.message;
    expect(headerValue(answer, 'via')).toContain(`branch=${offer.branch}`);
    expect(answer.body).toMatch(/^m=audio 42\d{3} RTP\/AVP 0 101\r$/m);
    expect(answer.body).toContain(`c=IN IP4 ${PUBLIC_IP}`);
    expect(answer.body).not.toContain('a=crypto');
  });

  it('fails a Genesys call over to the next carrier, SRTP to an SRTP carrier', async () => {
    // Prepare
    const offer = invite(
      genesys,
      sdp(GENESYS_IP, 40200, { suite: 'AES_CM_128_HMAC_SHA1_80' }),
    );

    // Act
    await genesys.send(offer.text, sbc?.ports.sip ?? 0, PRIVATE_IP);
    const first = await carrier.next(isRequest('INVITE'));
    if (first?.message.kind !== 'request') {
      throw new Error('the first carrier received no INVITE');
    }
    await carrier.send(
      response(first.message, 503, 'Service Unavailable', { toTag: token() }),
      first.from.port,
      first.from.address,
    );
    const second = await carrierB.next(isRequest('INVITE'));
    if (second?.message.kind !== 'request') {
      throw new Error('the next carrier received no INVITE');
    }
    await carrierB.send(
      response(second.message, 200, 'OK', {
        toTag: token(),
        contact: `<sip:${CARRIER_B_IP}:${carrierB.port}>`,
        body: sdp(CARRIER_B_IP, 40300, { suite: 'AES_CM_128_HMAC_SHA1_80' }),
      }),
      second.from.port,
      second.from.address,
    );
    const atGenesys = await genesys.next(isResponse(200, 'INVITE'));

    // Assess: plain RTP to the first carrier, SRTP to the second
    const suitesOf = (body: string) =>
      [...body.matchAll(/^a=crypto:(\d+) (\S+) /gm)].map(
        (match) => `${match[1]} ${match[2]}`,
      );
    expect(first.message.uri).toBe(
      `sip:+15550100@${CARRIER_IP}:${carrier.port}`,
    );
    expect(first.message.body).toMatch(/^m=audio 42\d{3} RTP\/AVP 0 101\r$/m);
    expect(suitesOf(first.message.body)).toEqual([]);
    expect(second.message.uri).toBe(
      `sip:+15550100@${CARRIER_B_IP}:${carrierB.port}`,
    );
    expect(second.message.body).toMatch(/^m=audio 42\d{3} RTP\/SAVP 0 101\r$/m);
    expect(suitesOf(second.message.body)).toEqual([
      '1 AES_CM_128_HMAC_SHA1_80',
      '2 AES_CM_128_HMAC_SHA1_32',
    ]);
    expect(headerValues(second.message, 'record-route').join(',')).toContain(
      ';cm=srtp',
    );

    // Assess: Genesys gets the answer in the suite it offered
    if (atGenesys?.message.kind !== 'response') {
      throw new Error('Genesys received no 200 OK');
    }
    expect(headerValue(atGenesys.message, 'via')).toContain(
      `branch=${offer.branch}`,
    );
    expect(atGenesys.message.body).toMatch(
      /^m=audio 42\d{3} RTP\/SAVP 0 101\r$/m,
    );
    expect(suitesOf(atGenesys.message.body)).toEqual([
      '1 AES_CM_128_HMAC_SHA1_80',
    ]);
    expect(atGenesys.message.body).toContain(`c=IN IP4 ${PUBLIC_IP}`);
  });

  it('answers a health check and forbids it anything else', async () => {
    // Act
    const pong = await ping(health, sbc as Sbc);
    await health.send(
      invite(health, sdp(HEALTH_IP, 40000)).text,
      sbc?.ports.sip ?? 0,
      PRIVATE_IP,
    );
    const refusal = await health.next(isResponse(403, 'INVITE'));

    // Assess
    expect(pong?.message.kind === 'response' && pong.message.status).toBe(200);
    expect(refusal).toBeDefined();
  });

  it('answers OPTIONS from a stranger (the profile allows it) and nothing else', async () => {
    // Act
    const pong = await ping(stranger, sbc as Sbc);
    await stranger.send(
      invite(stranger, sdp(STRANGER_IP, 40000)).text,
      sbc?.ports.sip ?? 0,
      PRIVATE_IP,
    );
    const anything = await stranger.next(() => true, 1500);

    // Assess
    expect(pong?.message.kind === 'response' && pong.message.status).toBe(200);
    expect(anything).toBeUndefined();
  });
});

describeWithSystem('the SBC with OPTIONS closed to strangers', NEEDS, () => {
  let sbc: Sbc | undefined;
  let stranger: UdpPeer;
  let smoke: UdpPeer;

  beforeAll(async () => {
    stranger = await UdpPeer.bind(STRANGER_IP);
    smoke = await UdpPeer.bind(HEALTH_IP);
    sbc = await startSbc(loadProfile('options-closed'), smoke, {
      smokeTestSources: [`${HEALTH_IP}/32`],
    });
  });

  afterAll(async () => {
    await stopSbc(sbc);
    await stranger?.close();
    await smoke?.close();
  });

  it('leaves a stranger without an answer', async () => {
    // Act
    const answer = await ping(stranger, sbc as Sbc);

    // Assess
    expect(answer).toBeUndefined();
    expect(sbc?.kamailio.exited()).toBeUndefined();
  });

  it('answers the smoke-test source', async () => {
    // Act
    const answer = await ping(smoke, sbc as Sbc);

    // Assess
    expect(answer?.message.kind === 'response' && answer.message.status).toBe(
      200,
    );
  });
});

describe('the rendered address.list', () => {
  describeWithSystem('loaded by a running Kamailio', NEEDS, () => {
    let sbc: Sbc | undefined;
    let smoke: UdpPeer;

    beforeAll(async () => {
      smoke = await UdpPeer.bind(HEALTH_IP);
      sbc = await startSbc(loadProfile('ipv6-peers'), smoke, {
        smokeTestSources: [`${HEALTH_IP}/32`],
      });
    });

    afterAll(async () => {
      await stopSbc(sbc);
      await smoke?.close();
    });

    it('holds the IPv6 and IPv4 sources in their groups', async () => {
      // Act
      const { stdout } = await run('kamcmd', [
        '-s',
        `unixs:${sbc?.runDir}/kamailio_ctl`,
        'permissions.subnetDump',
      ]);

      // Assess
      const entries = [
        ...stdout
          .replace(/\s+/g, ' ')
          .matchAll(
            /group: (\d+) item: \{ ip: (\S+) mask: (\d+) port: \d+ tag: (\S+) \}/g,
          ),
      ].map((match) => match.slice(1).join(' '));
      expect(entries).toEqual([
        '1 2001:db8:10:: 48 genesys',
        '1 192.0.2.16 28 genesys',
        '3 fd00:ec2:: 64 health-check',
      ]);
    });
  });
});
