/** The SIP profile: schema, validation and rendering of the image's configs. */
export { type Cidr, formatCidr, isCidr, parseCidr } from './cidr.ts';
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
  DEFAULT_SRTP_SUITES,
  GENESYS_MEDIA_CIDRS,
  isFqdn,
  profileJsonSchema,
  RTPENGINE_SUITES,
  type SipProfile,
  type SipProfileInput,
  SipProfileSchema,
  SRTP_SUITES,
  TRANSPORTS,
  type Transport,
} from './schema.ts';
