import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import nunjucks from 'nunjucks';
import { z } from 'zod';
import { type Cidr, formatCidr, parseCidr } from './cidr.ts';
import { ProfileError, type ProfileProblem } from './errors.ts';
import { formatPath } from './parse.ts';
import {
  type CertificateSource,
  cidrProblem,
  type ListeningPorts,
  listeningPortsIn,
  overlappingSources,
  PORT_ROLES,
  RTPENGINE_SUITES,
  SBC_PORTS,
  type SipProfile,
  type Transport,
} from './schema.ts';

/** The config templates, laid out like the tree they render. */
export const TEMPLATE_DIR = resolve(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'packer',
  'templates',
);

export interface RenderOptions {
  /** Extra CIDRs allowed to reach SIP, e.g. the local host side 198.18.0.1/32. */
  smokeTestSources?: string[];
  /** Where kamailio.cfg finds tls.cfg and address.list. */
  kamailioDir?: string;
  /** Where tls.cfg finds sbc.crt and sbc.key. */
  tlsDir?: string;
  /** Where Kamailio puts its control socket. */
  runDir?: string;
  /** SIP ports: `sip` for UDP and TCP, `tls` for TLS. */
  sipPorts?: { sip?: number; tls?: number };
  /** rtpengine's ng control port on loopback (its CLI port is the next one). */
  rtpengineNgPort?: number;
}

export interface RenderedFile {
  /** Relative to the root of the tree, e.g. `etc/kamailio/kamailio.cfg`. */
  path: string;
  content: string;
  mode: number;
}

/** The rendered tree: the contract with the provisioning scripts. */
export const RENDERED_FILES = [
  { path: 'etc/kamailio/kamailio.cfg', mode: 0o644 },
  { path: 'etc/kamailio/tls.cfg', mode: 0o644 },
  { path: 'etc/kamailio/address.list', mode: 0o644 },
  { path: 'etc/rtpengine/rtpengine.conf', mode: 0o644 },
  { path: 'etc/nftables.conf', mode: 0o644 },
  { path: 'etc/sysctl.d/60-sbc-hardening.conf', mode: 0o644 },
  { path: 'etc/chrony/sources.d/amazon-time-sync.sources', mode: 0o644 },
  { path: 'etc/ssh/sshd_config.d/60-sbc-hardening.conf', mode: 0o644 },
  { path: 'etc/sbc-ami/sbc.env', mode: 0o644 },
  { path: 'etc/systemd/system/kamailio.service.d/10-sbc.conf', mode: 0o644 },
  {
    path: 'etc/systemd/system/rtpengine-daemon.service.d/10-sbc.conf',
    mode: 0o644,
  },
] as const;

/** Written from the validated profile itself, not from a template. */
export const PROFILE_COPY_PATH = 'etc/sbc-ami/profile.json';

/** The image's ports; rtpengine's CLI port is the one after its ng port. */
export const DEFAULT_PORTS = {
  sip: SBC_PORTS.sip,
  tls: SBC_PORTS.tls,
  rtpengineNg: SBC_PORTS.rtpengineNg,
};

/** RSA suites Genesys lists, ECDHE first; the plain RSA ones as fallback. */
export const TLS_CIPHERS = [
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
].join(':');

const absolutePath = z
  .string()
  .refine((p) => isAbsolute(p) && !/[\s"'\\]/.test(p), {
    error: 'not an absolute path without spaces or quotes',
  });
const portNumber = z.int().min(1).max(65535);

const RenderOptionsSchema = z.strictObject({
  smokeTestSources: z
    .array(
      z.string().superRefine((text, ctx) => {
        const problem = cidrProblem(text, 'health');
        if (problem !== undefined) {
          ctx.addIssue({ code: 'custom', message: problem });
        }
      }),
    )
    .optional(),
  kamailioDir: absolutePath.optional(),
  tlsDir: absolutePath.optional(),
  runDir: absolutePath.optional(),
  sipPorts: z
    .strictObject({ sip: portNumber.optional(), tls: portNumber.optional() })
    .optional(),
  rtpengineNgPort: portNumber.max(65534).optional(),
});

interface ListEntry {
  listAddress: string;
  prefix: number;
  tag: string;
}

interface FamilySets {
  v4: string[];
  v6: string[];
}

function cidrsOf(texts: readonly string[]): Cidr[] {
  return texts.map((text) => {
    const cidr = parseCidr(text);
    if (cidr === undefined) {
      // The schema already refused it: reaching here is a programming error.
      throw new Error(`not a CIDR after validation: ${text}`);
    }
    return cidr;
  });
}

function byFamily(cidrs: readonly Cidr[]): FamilySets {
  const unique = (family: 4 | 6) => [
    ...new Set(cidrs.filter((c) => c.family === family).map(formatCidr)),
  ];
  return { v4: unique(4), v6: unique(6) };
}

function listEntries(texts: readonly string[], tag: string): ListEntry[] {
  return cidrsOf(texts).map((cidr) => ({
    listAddress: cidr.family === 6 ? `[${cidr.address}]` : cidr.address,
    prefix: cidr.prefix,
    tag,
  }));
}

/** A host as it goes in a SIP URI: IPv6 in brackets. */
function uriHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function defaultPort(transport: Transport): number {
  return transport === 'tls' ? 5061 : 5060;
}

/**
 * rtpengine flags for SDP sent toward one side. Suites outside the profile
 * are left out one by one (`SDES-no-`): rtpengine 10.5 otherwise offers its
 * whole list, AEAD and NULL suites included.
 */
function mediaFlags(profile: SipProfile, srtp: boolean): string {
  const flags = [
    'replace-origin',
    'replace-session-connection',
    'ICE=remove',
    'DTLS=off',
  ];
  if (!srtp) {
    return [...flags, 'RTP/AVP'].join(' ');
  }
  const allowed = new Set<string>(profile.srtp.suites);
  const refused = RTPENGINE_SUITES.filter((suite) => !allowed.has(suite));
  return [...flags, 'RTP/SAVP', ...refused.map((s) => `SDES-no-${s}`)].join(
    ' ',
  );
}

/** KEY=value lines for the first-boot script; values are checked by the schema. */
function certificateEnv(
  certificate: CertificateSource,
): Array<{ key: string; value: string }> {
  return [
    { key: 'SBC_CERT_SOURCE', value: certificate.source },
    { key: 'SBC_CERT_MIN_DAYS', value: String(certificate.minDaysValid) },
    { key: 'SBC_CERT_ID', value: certificate.certificateId },
    { key: 'SBC_KEY_ID', value: certificate.keyId },
  ];
}

/** The render option each listening port comes from. */
const PORT_OPTIONS: Record<keyof ListeningPorts, string> = {
  sip: 'sipPorts.sip',
  tls: 'sipPorts.tls',
  rtpengineNg: 'rtpengineNgPort',
  rtpengineCli: 'rtpengineNgPort',
};

/**
 * Ports given in the options that clash: with each other, or with the
 * profile's RTP range (the schema checked that range against the image's
 * own ports only).
 */
function listeningPortProblems(
  profile: SipProfile,
  ports: ListeningPorts,
): ProfileProblem[] {
  const keys = Object.keys(PORT_OPTIONS) as Array<keyof ListeningPorts>;
  const shared = keys.flatMap((key, i) => {
    const earlier = keys
      .slice(0, i)
      .find((other) => ports[other] === ports[key]);
    return earlier === undefined
      ? []
      : [
          {
            path: PORT_OPTIONS[key],
            message:
              `${ports[key]} (${PORT_ROLES[key]}) is already the port of ` +
              PORT_ROLES[earlier],
          },
        ];
  });
  const inRange = listeningPortsIn(profile.rtp, ports).map(({ key, text }) => ({
    path: PORT_OPTIONS[key],
    message:
      `${text} is inside the profile's RTP range ` +
      `${profile.rtp.portMin}-${profile.rtp.portMax}`,
  }));
  return [...shared, ...inRange];
}

/** Everything the templates see. Derived values are computed here, once. */
export function templateContext(
  profile: SipProfile,
  options: RenderOptions = {},
): Record<string, unknown> {
  const checked = RenderOptionsSchema.safeParse(options);
  if (!checked.success) {
    throw new ProfileError(
      'render options',
      checked.error.issues.map((issue) => ({
        path: formatPath(issue.path),
        message: issue.message,
      })),
    );
  }

  const smokeTestSources = options.smokeTestSources ?? [];
  const clashes = overlappingSources(
    profile,
    smokeTestSources.map((text, i) => ({
      // Same address group as the health checks: overlapping them is fine.
      owner: 'health checks',
      path: ['smokeTestSources', i],
      text,
    })),
  ).filter((problem) => problem.path[0] === 'smokeTestSources');
  if (clashes.length > 0) {
    throw new ProfileError(
      'render options',
      clashes.map((problem) => ({
        path: formatPath(problem.path),
        message: problem.message,
      })),
    );
  }
  const kamailioDir = options.kamailioDir ?? '/etc/kamailio';
  const tlsDir = options.tlsDir ?? '/etc/kamailio/tls';
  const ngPort = options.rtpengineNgPort ?? DEFAULT_PORTS.rtpengineNg;
  const ports = {
    sip: options.sipPorts?.sip ?? DEFAULT_PORTS.sip,
    tls: options.sipPorts?.tls ?? DEFAULT_PORTS.tls,
    rtpengineNg: ngPort,
    rtpengineCli: ngPort + 1,
  };

  const portProblems = listeningPortProblems(profile, ports);
  if (portProblems.length > 0) {
    throw new ProfileError('render options', portProblems);
  }

  const genesysTransport = profile.genesys.transport;
  const carriers = profile.carriers.map((carrier) => ({
    name: carrier.name,
    host: carrier.host,
    uriHost: uriHost(carrier.host),
    port: carrier.port ?? defaultPort(carrier.transport),
    transport: carrier.transport,
    media: carrier.media,
  }));

  // Who may reach each SIP transport: the peers on the transport they use,
  // health checks and the smoke test on all three.
  const probes = [...profile.sip.healthCheckSources, ...smokeTestSources];
  const sipSources = (transport: Transport) =>
    byFamily(
      cidrsOf([
        ...(genesysTransport === transport
          ? profile.genesys.signalingPeers
          : []),
        ...profile.carriers
          .filter((carrier) => carrier.transport === transport)
          .flatMap((carrier) => carrier.signalingPeers),
        ...probes,
      ]),
    );
  const mediaSources = byFamily(
    cidrsOf([
      ...profile.genesys.mediaCidrs,
      ...profile.carriers.flatMap(
        (carrier) => carrier.mediaCidrs ?? carrier.signalingPeers,
      ),
    ]),
  );

  const addressGroups = [
    {
      id: 1,
      title: 'Genesys Cloud signaling',
      entries: listEntries(profile.genesys.signalingPeers, 'genesys'),
    },
    {
      id: 2,
      title: 'Carriers',
      entries: profile.carriers.flatMap((carrier) =>
        listEntries(carrier.signalingPeers, carrier.name),
      ),
    },
    {
      id: 3,
      title: 'Health checks and the smoke test',
      entries: [
        ...listEntries(profile.sip.healthCheckSources, 'health-check'),
        ...listEntries(smokeTestSources, 'smoke-test'),
      ],
    },
  ];

  return {
    header:
      `Rendered by sbc-ami from SIP profile "${profile.name}". ` +
      'Edit the profile, not this file.',
    profile: { name: profile.name },
    sbc: { fqdn: profile.sbc.fqdn },
    paths: {
      kamailioDir,
      runDir: options.runDir ?? '/run/kamailio',
      certificate: join(tlsDir, 'sbc.crt'),
      privateKey: join(tlsDir, 'sbc.key'),
      caBundle: '/etc/ssl/certs/ca-certificates.crt',
      addressesEnv: '/etc/sbc-ami/addresses.env',
    },
    ports,
    tls: { ciphers: TLS_CIPHERS },
    genesys: {
      host: profile.genesys.termination.host,
      uriHost: uriHost(profile.genesys.termination.host),
      port: profile.genesys.termination.port ?? defaultPort(genesysTransport),
      transport: genesysTransport,
    },
    carriers,
    media: {
      toGenesys: mediaFlags(profile, true),
      toCarrierRtp: mediaFlags(profile, false),
      toCarrierSrtp: mediaFlags(profile, true),
    },
    answerOptionsFromUnknown: profile.sip.answerOptionsFromUnknown,
    topohKey: createHash('sha256')
      .update(`topoh:${profile.name}`)
      .digest('hex')
      .slice(0, 32),
    addressGroups,
    firewall: {
      sip: {
        udp: sipSources('udp'),
        tcp: sipSources('tcp'),
        tls: sipSources('tls'),
      },
      media: mediaSources,
      ssh: byFamily(cidrsOf(profile.admin.sshCidrs)),
    },
    rtp: { portMin: profile.rtp.portMin, portMax: profile.rtp.portMax },
    sshOpen: profile.admin.sshCidrs.length > 0,
    env: [
      { key: 'SBC_PROFILE_NAME', value: profile.name },
      { key: 'SBC_FQDN', value: profile.sbc.fqdn },
      ...certificateEnv(profile.certificate),
      {
        key: 'SBC_SSH_ENABLED',
        value: profile.admin.sshCidrs.length > 0 ? 'yes' : 'no',
      },
    ],
  };
}

function environment(): nunjucks.Environment {
  return new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATE_DIR), {
    autoescape: false,
    throwOnUndefined: true,
    trimBlocks: true,
    lstripBlocks: true,
  });
}

/** Renders every config file of the image from a validated profile. */
export function renderProfile(
  profile: SipProfile,
  options: RenderOptions = {},
): RenderedFile[] {
  const context = templateContext(profile, options);
  const env = environment();
  const files: RenderedFile[] = RENDERED_FILES.map(({ path, mode }) => ({
    path,
    content: env.render(`${path}.njk`, context),
    mode,
  }));
  files.push({
    path: PROFILE_COPY_PATH,
    content: `${JSON.stringify(profile, null, 2)}\n`,
    mode: 0o644,
  });
  return files;
}

/**
 * Writes a rendered tree under `dir`: folders 0755, each file with its mode
 * whatever the umask. Paths must stay inside `dir`.
 */
export async function writeRenderedTree(
  dir: string,
  files: readonly RenderedFile[],
): Promise<void> {
  const root = resolve(dir);
  for (const file of files) {
    const target = resolve(root, normalize(file.path));
    if (isAbsolute(file.path) || !target.startsWith(root + sep)) {
      throw new Error(`refusing to write outside ${root}: ${file.path}`);
    }
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    await writeFile(target, file.content, { mode: file.mode });
    await chmod(target, file.mode);
  }
}
