/** The SIP profile: schema, validation and rendering of the image's configs. */
export {
  type Cidr,
  formatCidr,
  hasHostBits,
  isCidr,
  networkOf,
  parseCidr,
} from './cidr.ts';
export {
  ProfileError,
  type ProfileProblem,
  ProfileReadError,
} from './errors.ts';
export {
  findKeyMaterial,
  formatPath,
  MAX_PROFILE_BYTES,
  parseProfile,
  parseProfileBytes,
  profileDigest,
  readProfileFile,
} from './parse.ts';
export {
  DEFAULT_PORTS,
  PROFILE_COPY_PATH,
  RENDERED_FILES,
  type RenderedFile,
  type RenderOptions,
  renderProfile,
  TEMPLATE_DIR,
  TLS_CIPHERS,
  templateContext,
  writeRenderedTree,
} from './render.ts';
export {
  type Carrier,
  type CertificateSource,
  cidrProblem,
  DEFAULT_SRTP_SUITES,
  type Exposure,
  GENESYS_MEDIA_CIDRS,
  isFqdn,
  type ListeningPorts,
  MIN_RTP_PORTS,
  profileJsonSchema,
  RTPENGINE_SUITES,
  SBC_PORTS,
  type SipProfile,
  type SipProfileInput,
  SipProfileSchema,
  SRTP_SUITES,
  TRANSPORTS,
  type Transport,
  WIDEST_PREFIX,
} from './schema.ts';
