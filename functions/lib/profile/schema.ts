import { isIP } from 'node:net';
import { z } from 'zod';
import { cidrsOverlap, isCidr, parseCidr } from './cidr.ts';

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

const cidr = z
  .string()
  .refine(isCidr, {
    error: 'not a CIDR (an IPv4 or IPv6 address, optionally with /prefix)',
  })
  .meta({ examples: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'] });

const cidrList = z.array(cidr);

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
    signalingPeers: cidrList.min(1).meta({
      description:
        'Genesys Cloud SIP signaling addresses of the trunk region; ' +
        'they change, so they come from the profile, never from the image',
    }),
    mediaCidrs: cidrList.min(1).default([...GENESYS_MEDIA_CIDRS]),
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
    signalingPeers: cidrList.min(1).meta({
      description: 'Addresses the carrier sends SIP from',
    }),
    mediaCidrs: cidrList.min(1).optional().meta({
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

const rtp = z
  .strictObject({
    portMin: z.int().min(1024).max(65535).default(30000),
    portMax: z.int().min(1024).max(65535).default(40000),
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
    }
  })
  .prefault({})
  .meta({ description: "rtpengine's port range; the firewall opens it too" });

const sip = z
  .strictObject({
    healthCheckSources: cidrList.default([]).meta({
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
    sshCidrs: cidrList.default([]).meta({
      description: 'Who may reach SSH; empty closes it (use Session Manager)',
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
    for (const problem of overlappingSources(profile)) {
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
