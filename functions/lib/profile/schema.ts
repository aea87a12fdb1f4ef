import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import {
  type Cidr,
  cidrsOverlap,
  formatCidr,
  hasHostBits,
  networkOf,
  parseCidr,
} from './cidr.ts';

/**
 * The SIP profile: everything that differs between two SBC images. Every
 * object is strict, so a misspelt key fails and names itself instead of
 * being ignored. The JSON Schema in `schemas/sip-profile.schema.json` is
 * generated from this file (`node scripts/gen-profile-schema.ts`).
 */

/** Genesys Cloud media sources (BYOC Cloud), used when a profile has none. */
export const GENESYS_MEDIA_CIDRS = [
  '52.129.96.0/20',
  '169.150.104.0/21',
  '167.234.48.0/20',
  '136.245.64.0/18',
] as const;

/**
 * SDES suites in the order rtpengine 10.5 offers them. It has no flag to
 * reorder them, only to leave some out (`SDES-no-`), so a profile lists its
 * suites in this order and what it says is what the offer carries. F8 and
 * NULL (no encryption) suites are never allowed.
 */
export const SRTP_SUITES = [
  'AEAD_AES_256_GCM',
  'AEAD_AES_128_GCM',
  'AES_256_CM_HMAC_SHA1_80',
  'AES_256_CM_HMAC_SHA1_32',
  'AES_192_CM_HMAC_SHA1_80',
  'AES_192_CM_HMAC_SHA1_32',
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
] as const;

/** Every suite rtpengine 10.5 knows, including those a profile may not use. */
export const RTPENGINE_SUITES = [
  ...SRTP_SUITES,
  'F8_128_HMAC_SHA1_80',
  'F8_128_HMAC_SHA1_32',
  'NULL_HMAC_SHA1_80',
  'NULL_HMAC_SHA1_32',
] as const;

export const DEFAULT_SRTP_SUITES = [
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
] as const;

export const TRANSPORTS = ['udp', 'tcp', 'tls'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Secrets Manager names and ARNs, SSM parameter names and ARNs. */
const AWS_ID = /^[A-Za-z0-9/_+=.@:-]{1,2048}$/;

/** A lower-case DNS name of two labels or more, not an address. */
export function isFqdn(text: string): boolean {
  if (text.length > 253 || isIP(text) !== 0) {
    return false;
  }
  const labels = text.split('.');
  const last = labels.at(-1) ?? '';
  return (
    labels.length >= 2 &&
    labels.every((label) => LABEL.test(label)) &&
    !/^[0-9]+$/.test(last)
  );
}

function isHost(text: string): boolean {
  return isFqdn(text) || (isIP(text) !== 0 && !text.includes('%'));
}

/** A custom message, except for a missing field, which is "required". */
function unlessMissing(message: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? 'required' : message;
}

const slug = z.string().regex(SLUG, {
  error: '1-63 of a-z, 0-9 and "-", not starting or ending with "-"',
});

const fqdn = z
  .string()
  .refine(isFqdn, { error: 'not a lower-case fully qualified domain name' })
  .meta({ examples: ['sbc.example.com'] });

const host = z
  .string()
  .refine(isHost, { error: 'not a domain name or an IP address' });

/**
 * The widest block a firewall rule of the SBC may open a port to. An IPv4
 * /8 is the largest block one network holds (all of 10.0.0.0/8); an IPv6
 * /32 is what a registry allocates to a whole provider (a site is a /48, a
 * VPC a /56). Anything wider spans networks nobody vouches for.
 */
export const WIDEST_PREFIX = { 4: 8, 6: 32 } as const;

/** What a CIDR field opens, and to whom it should be narrowed. */
const EXPOSURES = {
  sip: {
    opens: 'SIP',
    advice: "list the peer's own signaling addresses",
  },
  health: {
    opens: 'SIP',
    advice: "list the load balancers' or monitors' own addresses",
  },
  media: {
    opens: 'the RTP ports',
    advice: 'list the addresses the peer sends media from',
  },
  ssh: {
    opens: 'SSH',
    advice:
      'list only your admin network, or leave admin.sshCidrs empty and ' +
      'reach the host through AWS Systems Manager Session Manager',
  },
} as const;
export type Exposure = keyof typeof EXPOSURES;

function span(cidr: Cidr): string {
  const bits = (cidr.family === 4 ? 32 : 128) - cidr.prefix;
  return cidr.prefix === 0
    ? `the whole IPv${cidr.family} internet`
    : `2^${bits} addresses`;
}

/**
 * What is wrong with one CIDR of a profile, or undefined. A block with
 * host bits set is refused rather than masked: `10.0.0.1/16` may mean the
 * host or its network, and the firewall and Kamailio must not guess.
 */
export function cidrProblem(
  text: string,
  exposure: Exposure,
): string | undefined {
  const cidr = parseCidr(text);
  if (cidr === undefined) {
    return 'not a CIDR (an IPv4 or IPv6 address, optionally with /prefix)';
  }
  if (hasHostBits(cidr)) {
    return (
      `${text} has host bits set: write the network ` +
      `${formatCidr(networkOf(cidr))}, or ${cidr.address} alone for one host`
    );
  }
  const widest = WIDEST_PREFIX[cidr.family];
  if (cidr.prefix < widest) {
    const { opens, advice } = EXPOSURES[exposure];
    return (
      `${text} would open ${opens} to ${span(cidr)} (a prefix shorter ` +
      `than /${widest}): ${advice}`
    );
  }
  return undefined;
}

const cidrList = (exposure: Exposure) =>
  z.array(
    z
      .string()
      .superRefine((text, ctx) => {
        const problem = cidrProblem(text, exposure);
        if (problem !== undefined) {
          ctx.addIssue({ code: 'custom', message: problem });
        }
      })
      .meta({
        examples: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'],
      }),
  );

const port = z
  .int({ error: unlessMissing('not a port number') })
  .min(1, { error: 'not a port number (1-65535)' })
  .max(65535, { error: 'not a port number (1-65535)' });

const transport = z.enum(TRANSPORTS);

const awsId = z.string().regex(AWS_ID, {
  error: 'not a Secrets Manager or SSM name or ARN',
});

const minDaysValid = z.int().min(1).max(365).default(21).meta({
  description:
    'The expiry timer warns when the certificate has fewer days left',
});

const certificateFromSecretsManager = z
  .strictObject({
    source: z.literal('secretsmanager'),
    certificateId: awsId.meta({
      description: 'Secret holding the PEM certificate chain, leaf first',
    }),
    keyId: awsId.meta({ description: 'Secret holding the PEM private key' }),
    minDaysValid,
  })
  .meta({ title: 'Certificate and key from AWS Secrets Manager' });

const certificateFromSsm = z
  .strictObject({
    source: z.literal('ssm'),
    certificateId: awsId.meta({
      description: 'Parameter holding the PEM certificate chain, leaf first',
    }),
    keyId: awsId.meta({
      description: 'SecureString parameter holding the PEM private key',
    }),
    minDaysValid,
  })
  .meta({ title: 'Certificate and key from SSM Parameter Store' });

const certificate = z
  .discriminatedUnion(
    'source',
    [certificateFromSecretsManager, certificateFromSsm],
    { error: unlessMissing('source must be one of secretsmanager, ssm') },
  )
  .meta({
    description:
      'Where the certificate and its RSA key come from at first boot. ' +
      'The key itself never appears in a profile or in the image.',
  });

const genesys = z
  .strictObject({
    signalingPeers: cidrList('sip')
      .min(1)
      .meta({
        description:
          'Genesys Cloud SIP signaling addresses of the trunk region; ' +
          'they change, so they come from the profile, never from the image',
      }),
    mediaCidrs: cidrList('media')
      .min(1)
      .default([...GENESYS_MEDIA_CIDRS]),
    transport: transport.default('tls'),
    termination: z.strictObject({
      host: host.meta({
        description:
          "The trunk's inbound SIP termination host; calls from carriers " +
          'are sent to it and it becomes the Request-URI host',
      }),
      port: port.optional().meta({
        description: 'Default 5061 for tls, 5060 otherwise',
      }),
    }),
  })
  .meta({ title: 'The Genesys Cloud BYOC Cloud side of the trunk' });

const carrier = z
  .strictObject({
    name: slug,
    host: host.meta({ description: 'Where calls from Genesys are sent' }),
    port: port.optional().meta({
      description: 'Default 5061 for tls, 5060 otherwise',
    }),
    transport: transport.default('udp'),
    signalingPeers: cidrList('sip').min(1).meta({
      description: 'Addresses the carrier sends SIP from',
    }),
    mediaCidrs: cidrList('media').min(1).optional().meta({
      description: 'Addresses the carrier sends RTP from; default its peers',
    }),
    media: z.enum(['rtp', 'srtp']).default('rtp'),
  })
  .meta({ title: 'A carrier trunk' });

const srtp = z
  .strictObject({
    suites: z
      .array(z.enum(SRTP_SUITES))
      .min(1)
      .default([...DEFAULT_SRTP_SUITES])
      .meta({
        description:
          "SDES suites offered to Genesys, in rtpengine's offer order",
      }),
  })
  .superRefine(({ suites }, ctx) => {
    if (new Set(suites).size !== suites.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['suites'],
        message: 'a suite is listed twice',
      });
      return;
    }
    const wanted = [...suites].sort(
      (a, b) => SRTP_SUITES.indexOf(a) - SRTP_SUITES.indexOf(b),
    );
    if (wanted.some((suite, index) => suite !== suites[index])) {
      ctx.addIssue({
        code: 'custom',
        path: ['suites'],
        message:
          'rtpengine offers suites in a fixed order; list them as ' +
          wanted.join(', '),
      });
    }
  })
  .prefault({});

/** The ports the SBC itself listens on. */
export interface ListeningPorts {
  /** SIP over UDP and TCP. */
  readonly sip: number;
  /** SIP over TLS. */
  readonly tls: number;
  /** rtpengine's ng control socket (UDP, loopback). */
  readonly rtpengineNg: number;
  /** rtpengine's CLI (TCP, loopback). */
  readonly rtpengineCli: number;
}

/** The ports of the image, as `render.ts` fills them into the templates. */
export const SBC_PORTS: ListeningPorts = {
  sip: 5060,
  tls: 5061,
  rtpengineNg: 2223,
  rtpengineCli: 2224,
};

export const PORT_ROLES: Record<keyof ListeningPorts, string> = {
  sip: 'SIP over UDP and TCP',
  tls: 'SIP over TLS',
  rtpengineNg: "rtpengine's ng control",
  rtpengineCli: "rtpengine's CLI",
};

/**
 * Listening ports inside an RTP range, each with its role. rtpengine would
 * hand such a port to a call, or find it taken, and the media rule would
 * open it to every media source.
 */
export function listeningPortsIn(
  range: { portMin: number; portMax: number },
  ports: ListeningPorts,
): Array<{ key: keyof ListeningPorts; text: string }> {
  return (Object.keys(PORT_ROLES) as Array<keyof ListeningPorts>)
    .filter((key) => range.portMin <= ports[key] && ports[key] <= range.portMax)
    .sort((a, b) => ports[a] - ports[b])
    .map((key) => ({ key, text: `${ports[key]} (${PORT_ROLES[key]})` }));
}

/**
 * The fewest ports an RTP range may have. rtpengine takes two ports per
 * stream (RTP on the even one, RTCP on the next) and a call has a stream on
 * each leg, toward Genesys and toward the carrier: four ports a call. 100
 * ports carry 25 simultaneous calls, fewer while ended calls keep theirs for
 * rtpengine's delete-delay; a narrower range fails calls under any load.
 */
export const MIN_RTP_PORTS = 100;

const rtpPort = (fallback: number) =>
  z
    .int({ error: unlessMissing('not a port number') })
    .min(1024, {
      error:
        'below 1024: those ports belong to system services (SSH on 22) ' +
        'and rtpengine runs without the privilege to bind them',
    })
    .max(65535, { error: 'not a port number (1024-65535)' })
    .default(fallback);

const rtp = z
  .strictObject({
    portMin: rtpPort(30000).meta({
      description: 'First RTP port, even (RTP on even ports, RTCP on odd)',
    }),
    portMax: rtpPort(40000).meta({ description: 'Last RTP port' }),
  })
  .superRefine(({ portMin, portMax }, ctx) => {
    if (portMin % 2 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['portMin'],
        message: 'must be even (RTP on even ports, RTCP on the next)',
      });
    }
    if (portMin >= portMax) {
      ctx.addIssue({
        code: 'custom',
        path: ['portMax'],
        message: `must be greater than rtp.portMin (${portMin})`,
      });
      return;
    }
    if ([portMin, portMax].some((p) => p < 1024 || p > 65535)) {
      return; // the bad port is reported already
    }
    const count = portMax - portMin + 1;
    if (count < MIN_RTP_PORTS) {
      ctx.addIssue({
        code: 'custom',
        path: ['portMax'],
        message:
          `${portMin}-${portMax} is ${count} ports, fewer than ` +
          `${MIN_RTP_PORTS}: each call takes four (RTP and RTCP on both ` +
          'legs), so the range must hold at least ' +
          `${MIN_RTP_PORTS} (portMax ${portMin + MIN_RTP_PORTS - 1} or more)`,
      });
    }
    const taken = listeningPortsIn({ portMin, portMax }, SBC_PORTS);
    if (taken.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          `${portMin}-${portMax} holds ports the SBC listens on: ` +
          `${taken.map((port) => port.text).join(', ')}; choose a range ` +
          'clear of them, such as the default 30000-40000',
      });
    }
  })
  .prefault({})
  .meta({
    description:
      "rtpengine's UDP port range; the firewall opens it to the media " +
      `sources. At least ${MIN_RTP_PORTS} ports, from 1024, clear of the ` +
      `SBC's own ports (${Object.values(SBC_PORTS).join(', ')})`,
  });

const sip = z
  .strictObject({
    healthCheckSources: cidrList('health')
      .default([])
      .meta({
        description:
          'Sources allowed to reach SIP for health checks (load balancers, ' +
          'monitors); they get OPTIONS answered and nothing else',
      }),
    answerOptionsFromUnknown: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Whether Kamailio answers OPTIONS from a source in no address ' +
          'group. The firewall still admits SIP only from the peers and ' +
          'health-check sources',
      }),
  })
  .prefault({});

const admin = z
  .strictObject({
    sshCidrs: cidrList('ssh')
      .default([])
      .meta({
        description:
          'Who may reach SSH, each block IPv4 /8 or IPv6 /32 at the widest; ' +
          'empty closes it (use Session Manager)',
      }),
  })
  .prefault({});

export const SipProfileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: slug.meta({
      description: 'Used in image tags and SSM parameter names',
    }),
    description: z.string().max(500).optional(),
    sbc: z.strictObject({ fqdn }),
    genesys,
    carriers: z
      .array(carrier)
      .min(1)
      .superRefine((carriers, ctx) => {
        const seen = new Set<string>();
        carriers.forEach((entry, index) => {
          if (seen.has(entry.name)) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'name'],
              message: `duplicate carrier name "${entry.name}"`,
            });
          }
          seen.add(entry.name);
        });
      }),
    certificate,
    srtp,
    rtp,
    sip,
    admin,
  })
  .superRefine((profile, ctx) => {
    for (const problem of [
      ...overlappingSources(profile),
      ...routingLoops(profile),
    ]) {
      ctx.addIssue({ code: 'custom', ...problem });
    }
  })
  .meta({
    title: 'SBC SIP profile',
    description:
      'A Session Border Controller image for a Genesys Cloud BYOC Cloud ' +
      'trunk: peers, certificate source, media and access settings',
  });

/** A source the SIP proxy must place in exactly one address group. */
export interface SourceEntry {
  readonly owner: string;
  readonly path: (string | number)[];
  readonly text: string;
}

/** Every SIP source of a profile with its owner and its path. */
export function sipSources(profile: {
  genesys: { signalingPeers: string[] };
  carriers: Array<{ name: string; signalingPeers: string[] }>;
  sip: { healthCheckSources: string[] };
}): SourceEntry[] {
  return [
    ...profile.genesys.signalingPeers.map((text, i) => ({
      owner: 'Genesys',
      path: ['genesys', 'signalingPeers', i],
      text,
    })),
    ...profile.carriers.flatMap((carrier, c) =>
      carrier.signalingPeers.map((text, i) => ({
        owner: `carrier ${carrier.name}`,
        path: ['carriers', c, 'signalingPeers', i],
        text,
      })),
    ),
    ...profile.sip.healthCheckSources.map((text, i) => ({
      owner: 'health checks',
      path: ['sip', 'healthCheckSources', i],
      text,
    })),
  ];
}

/**
 * Sources of two different owners that overlap: the proxy could not tell
 * whether a request comes from Genesys, a carrier or a health check.
 */
export function overlappingSources(
  profile: Parameters<typeof sipSources>[0],
  extra: readonly SourceEntry[] = [],
): Array<{ path: (string | number)[]; message: string }> {
  const entries = [...sipSources(profile), ...extra];
  const problems: Array<{ path: (string | number)[]; message: string }> = [];
  entries.forEach((entry, i) => {
    const cidr = parseCidr(entry.text);
    const clash = entries.slice(0, i).find((other) => {
      const otherCidr = parseCidr(other.text);
      return (
        other.owner !== entry.owner &&
        cidr !== undefined &&
        otherCidr !== undefined &&
        cidrsOverlap(cidr, otherCidr)
      );
    });
    if (clash !== undefined) {
      problems.push({
        path: entry.path,
        message:
          `overlaps ${clash.text} of ${clash.owner}: ` +
          'a SIP source belongs to one peer only',
      });
    }
  });
  return problems;
}

/** The same host: equal names, or one address written two ways. */
function sameHost(a: string, b: string): boolean {
  const family = isIP(a);
  if (family === 0 || family !== isIP(b)) {
    return a === b;
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addAddress(a, type);
  return list.check(b, type);
}

/**
 * Destinations that send a call back where it came from: the SBC itself,
 * or a carrier that is in fact the Genesys termination host.
 */
export function routingLoops(profile: {
  sbc: { fqdn: string };
  genesys: { termination: { host: string } };
  carriers: Array<{ host: string }>;
}): Array<{ path: (string | number)[]; message: string }> {
  const self = profile.sbc.fqdn;
  const genesys = profile.genesys.termination.host;
  const problems: Array<{ path: (string | number)[]; message: string }> = [];
  if (sameHost(genesys, self)) {
    problems.push({
      path: ['genesys', 'termination', 'host'],
      message:
        `${genesys} is the SBC itself (sbc.fqdn): calls from the carriers ` +
        "would loop back into it; give the trunk's termination host",
    });
  }
  profile.carriers.forEach((carrier, index) => {
    const path = ['carriers', index, 'host'];
    if (sameHost(carrier.host, self)) {
      problems.push({
        path,
        message:
          `${carrier.host} is the SBC itself (sbc.fqdn): calls from ` +
          "Genesys would loop back into it; give the carrier's SIP host",
      });
    } else if (sameHost(carrier.host, genesys)) {
      problems.push({
        path,
        message:
          `${carrier.host} is the Genesys termination host: calls from ` +
          "Genesys would go back to Genesys; give the carrier's SIP host",
      });
    }
  });
  return problems;
}

/** A validated profile, defaults filled in. */
export type SipProfile = z.output<typeof SipProfileSchema>;
/** A profile as written in a file, before defaults. */
export type SipProfileInput = z.input<typeof SipProfileSchema>;
export type Carrier = SipProfile['carriers'][number];
export type CertificateSource = SipProfile['certificate'];

/** The JSON Schema of the profile file (the input side: defaults optional). */
export function profileJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(SipProfileSchema, {
    io: 'input',
    target: 'draft-2020-12',
  }) as Record<string, unknown>;
}
