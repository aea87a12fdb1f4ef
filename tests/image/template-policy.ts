import { parse } from '@cdktf/hcl2json';
import {
  DEBIAN_12_NAME_PATTERN,
  DEBIAN_OWNER_ID,
  MANAGED_BY_VALUE,
  TAG_BASE_IMAGE,
  TAG_MANAGED_BY,
  TAG_PROFILE,
  TAG_PROFILE_DIGEST,
  TAG_RUN_ID,
  TAG_SOURCE_REVISION,
  TAG_TEMPLATE_DIGEST,
} from '../../functions/lib/constants.ts';

/**
 * The policy of the Packer template (DOMAIN.md, "Packer and AWS"), checked
 * on the template as parsed by @cdktf/hcl2json. Each rule adds a violation
 * that names what is wrong; an empty list means the template complies.
 */

type Json = Record<string, unknown>;

/** An HCL interpolation as hcl2json writes it: `${var.run_id}`. */
function hcl(expression: string): string {
  return `\${${expression}}`;
}

/** The provenance tags every builder resource, image and snapshot carries. */
export const REQUIRED_TAGS: Record<string, string> = {
  [TAG_MANAGED_BY]: MANAGED_BY_VALUE,
  [TAG_RUN_ID]: hcl('var.run_id'),
  [TAG_PROFILE]: hcl('var.profile_name'),
  [TAG_PROFILE_DIGEST]: hcl('var.profile_digest'),
  [TAG_TEMPLATE_DIGEST]: hcl('var.template_digest'),
  [TAG_SOURCE_REVISION]: hcl('var.source_revision'),
  [TAG_BASE_IMAGE]: hcl('var.base_image_id'),
};

const TOP_LEVEL_BLOCKS = new Set([
  'packer',
  'variable',
  'locals',
  'local',
  'source',
  'build',
  'data',
]);
const PACKER_BLOCK_KEYS = new Set(['required_version', 'required_plugins']);
const BUILD_KEYS = new Set([
  'name',
  'description',
  'sources',
  'source',
  'provisioner',
  'post-processor',
  'post-processors',
  'error-cleanup-provisioner',
  'hcp_packer_registry',
]);
const PROVISIONER_TYPES = new Set([
  'shell',
  'file',
  'shell-local',
  'breakpoint',
]);
const POST_PROCESSOR_TYPES = new Set(['manifest', 'checksum', 'shell-local']);
/** The nested blocks the amazon-ebs builder accepts. */
const AMAZON_EBS_BLOCKS = new Set([
  'source_ami_filter',
  'launch_block_device_mappings',
  'ami_block_device_mappings',
  'metadata_options',
  'aws_polling',
  'assume_role',
  'vault_aws_engine',
  'security_group_filter',
  'subnet_filter',
  'vpc_filter',
  'run_tag',
  'run_volume_tag',
  'tag',
  'snapshot_tag',
  'spot_tag',
  'fleet_tag',
  'placement',
  'polling',
  'license_specifications',
  'capacity_reservation_target',
]);

export interface PolicyInput {
  /** The template text, for the order of blocks (JSON groups them by type). */
  readonly text: string;
  /** The parsed template. */
  readonly template: Json;
  /** The provisioning scripts the template runs, by file name: text. */
  readonly scripts: Readonly<Record<string, string>>;
}

export async function parseTemplate(text: string): Promise<Json> {
  return (await parse('sbc.pkr.hcl', text)) as Json;
}

/** Every violation of the template policy; empty when the template complies. */
export function templateViolations(input: PolicyInput): string[] {
  const violations: string[] = [];
  const add = (message: string) => violations.push(message);
  const { template } = input;

  checkKnownBlocks(template, add);
  checkPlugins(template, add);
  const source = amazonEbsSource(template, add);
  if (source !== undefined) {
    checkSource(source, template, add);
  }
  checkBuild(input, add);
  checkStrings(input, add);
  return violations;
}

// ------------------------------------------------------------ structure

function checkKnownBlocks(template: Json, add: (m: string) => void) {
  for (const key of Object.keys(template)) {
    if (!TOP_LEVEL_BLOCKS.has(key)) {
      add(`unknown top-level block "${key}"`);
    }
  }
  for (const block of blocks(template.packer)) {
    for (const key of Object.keys(block)) {
      if (!PACKER_BLOCK_KEYS.has(key)) {
        add(`unknown setting "${key}" in the packer block`);
      }
    }
  }
  for (const [type, named] of Object.entries(asObject(template.source))) {
    if (type !== 'amazon-ebs') {
      add(`source type "${type}" is not allowed (amazon-ebs only)`);
      continue;
    }
    for (const block of Object.values(asObject(named)).flatMap(blocks)) {
      for (const [key, value] of Object.entries(block)) {
        if (isBlockList(value) && !AMAZON_EBS_BLOCKS.has(key)) {
          add(`unknown block "${key}" in source amazon-ebs`);
        }
      }
    }
  }
  for (const build of blocks(template.build)) {
    for (const key of Object.keys(build)) {
      if (!BUILD_KEYS.has(key)) {
        add(
          key === 'provisioners'
            ? 'a "provisioners" block does not exist in HCL2: ' +
                'use repeated provisioner "TYPE" blocks'
            : `unknown block "${key}" in build`,
        );
      }
    }
    for (const type of Object.keys(asObject(build.provisioner))) {
      if (!PROVISIONER_TYPES.has(type)) {
        add(`unknown provisioner type "${type}"`);
      }
    }
    for (const type of Object.keys(asObject(build['post-processor']))) {
      if (!POST_PROCESSOR_TYPES.has(type)) {
        add(`unknown post-processor type "${type}"`);
      }
    }
  }
}

function checkPlugins(template: Json, add: (m: string) => void) {
  const plugins = blocks(template.packer).flatMap((packer) =>
    blocks(packer.required_plugins),
  );
  const amazon = plugins.map((p) => asObject(p.amazon)).find(isNonEmpty);
  if (amazon === undefined) {
    add('required_plugins does not declare the amazon plugin');
  }
  for (const block of plugins) {
    for (const [name, plugin] of Object.entries(block)) {
      const version = String(asObject(plugin).version ?? '');
      if (!/^=?\s*\d+\.\d+\.\d+$/.test(version.trim())) {
        add(
          `plugin ${name} is not pinned to one version (version = "${version}")`,
        );
      }
    }
  }
}

function amazonEbsSource(
  template: Json,
  add: (m: string) => void,
): Json | undefined {
  const sources = Object.values(
    asObject(asObject(template.source)['amazon-ebs']),
  ).flatMap(blocks);
  if (sources.length !== 1) {
    add(`expected one amazon-ebs source, found ${sources.length}`);
  }
  return sources[0];
}

function checkSource(source: Json, template: Json, add: (m: string) => void) {
  const filter = blocks(source.source_ami_filter)[0];
  if (source.source_ami !== undefined) {
    add('source_ami is set: the base image must come from source_ami_filter');
  }
  if (filter === undefined) {
    add('no source_ami_filter');
  } else {
    const owners = filter.owners;
    if (
      !Array.isArray(owners) ||
      owners.length !== 1 ||
      owners[0] !== DEBIAN_OWNER_ID
    ) {
      add(`source_ami_filter owners must be ["${DEBIAN_OWNER_ID}"] only`);
    }
    if (filter.most_recent !== true) {
      add('source_ami_filter most_recent must be true');
    }
    const filters = asObject(filter.filters);
    if (filters.name !== DEBIAN_12_NAME_PATTERN) {
      add(`source_ami_filter name must be "${DEBIAN_12_NAME_PATTERN}"`);
    }
    if (filters['image-id'] !== hcl('var.base_image_id')) {
      add('source_ami_filter must pin image-id to var.base_image_id');
    }
  }

  if (
    source.instance_type !== hcl('var.instance_type') ||
    asObject(template.variable).instance_type === undefined
  ) {
    add('instance_type must be the variable instance_type');
  }
  if (source.encrypt_boot !== true) {
    add('encrypt_boot must be true');
  }
  if (
    typeof source.kms_key_id !== 'string' ||
    !source.kms_key_id.startsWith('${var.')
  ) {
    add('kms_key_id must come from a variable');
  }
  if (source.imds_support !== 'v2.0') {
    add('imds_support must be "v2.0"');
  }
  const metadata = blocks(source.metadata_options)[0];
  if (metadata?.http_tokens !== 'required') {
    add('metadata_options http_tokens must be "required" on the builder');
  }
  if (source.deprecate_at === undefined) {
    add('deprecate_at is not set');
  }

  const devices = [
    ...blocks(source.launch_block_device_mappings),
    ...blocks(source.ami_block_device_mappings),
  ];
  if (devices.length === 0) {
    add('no launch_block_device_mappings (gp3 root volume)');
  }
  for (const device of devices) {
    if (device.volume_type !== 'gp3') {
      add(`volume ${String(device.device_name)} is not gp3`);
    }
  }

  checkAccess(source, add);

  const polling = blocks(source.aws_polling)[0];
  if (
    polling === undefined ||
    typeof polling.delay_seconds !== 'number' ||
    typeof polling.max_attempts !== 'number'
  ) {
    add('aws_polling with delay_seconds and max_attempts is not set');
  }

  for (const key of ['run_tags', 'tags', 'snapshot_tags']) {
    checkTags(key, source[key], template, add);
  }

  for (const key of ['ami_groups', 'snapshot_groups']) {
    const groups = source[key];
    if (Array.isArray(groups) && groups.includes('all')) {
      add(`${key} contains "all": the image would be public`);
    }
  }
}

/** Session Manager, or SSH from the builder's own address only. */
function checkAccess(source: Json, add: (m: string) => void) {
  if (source.ssh_interface === 'session_manager') {
    return;
  }
  if (
    source.security_group_id !== undefined ||
    source.security_group_ids !== undefined
  ) {
    add('a fixed security group is used: its sources cannot be checked');
    return;
  }
  const cidrs = source.temporary_security_group_source_cidrs;
  if (Array.isArray(cidrs) && cidrs.length > 0) {
    for (const cidr of cidrs) {
      if (typeof cidr !== 'string' || !/\/32$/.test(cidr)) {
        add(
          `temporary_security_group_source_cidrs ${String(cidr)} is not one address`,
        );
      }
    }
    return;
  }
  if (source.temporary_security_group_source_public_ip !== true) {
    add(
      'SSH is open to any address: use session_manager or limit the ' +
        'temporary security group to the builder',
    );
  }
}

function checkTags(
  key: string,
  value: unknown,
  template: Json,
  add: (m: string) => void,
) {
  const tags = resolveTags(value, template);
  if (tags === undefined) {
    add(`${key} is not set or cannot be resolved`);
    return;
  }
  for (const [tag, expected] of Object.entries(REQUIRED_TAGS)) {
    if (tags[tag] !== expected) {
      add(`${key} "${tag}" must be ${expected} (is ${String(tags[tag])})`);
    }
  }
}

/** A map literal, `local.NAME` or `merge(local.NAME, ...)`. */
function resolveTags(value: unknown, template: Json): Json | undefined {
  if (isNonEmpty(asObject(value))) {
    return asObject(value);
  }
  if (typeof value !== 'string') {
    return undefined;
  }
  const reference = /^\$\{(?:merge\()?local\.([A-Za-z0-9_]+)/.exec(value);
  const name = reference?.[1];
  if (name === undefined) {
    return undefined;
  }
  const locals = blocks(template.locals).find((l) => name in l);
  return locals === undefined ? undefined : asObject(locals[name]);
}

// ---------------------------------------------------------------- build

function checkBuild(input: PolicyInput, add: (m: string) => void) {
  const build = blocks(input.template.build)[0];
  if (build === undefined) {
    add('no build block');
    return;
  }

  const provisioners = asObject(build.provisioner);
  const shells = blocks(provisioners.shell);
  if (shells.length === 0) {
    add('no shell provisioner');
  }
  for (const shell of shells) {
    const inline = shell.inline;
    if (Array.isArray(inline) && inline[0] !== 'set -euo pipefail') {
      add('an inline shell step does not start with set -euo pipefail');
    }
  }
  const last = shells.at(-1);
  if (
    typeof last?.script !== 'string' ||
    !last.script.endsWith('validate.sh')
  ) {
    add('the last shell provisioner is not the validation script');
  }

  // JSON groups provisioners by type, so their order comes from the text.
  const order = [...input.text.matchAll(/^\s*provisioner\s+"([^"]+)"/gm)].map(
    (match) => match[1],
  );
  if (order.at(-1) !== 'shell') {
    add('the validation step is not the last provisioner');
  }

  const manifest = blocks(asObject(build['post-processor']).manifest)[0];
  if (manifest === undefined) {
    add('no manifest post-processor');
  } else {
    if (manifest.output !== 'packer-manifest.json') {
      add('the manifest output must be packer-manifest.json');
    }
    if (manifest.strip_path !== true) {
      add('the manifest must strip_path');
    }
    if (asObject(manifest.custom_data).run_id !== hcl('var.run_id')) {
      add('the manifest custom_data must carry run_id = var.run_id');
    }
  }
}

// -------------------------------------------------------------- content

const INSECURE_TRANSFER =
  /\b(curl|wget)\b[^\n]*(\s-[A-Za-z]*k[A-Za-z]*\b|--insecure\b|--no-check-certificate\b)/;
const IP_FORWARD_ON = /ip_forward\s*=\s*1\b/;
const SECRET_NAME =
  /(^|_)(secret|password|passwd|token|private_key|access_key|secret_key)$/i;
const SECRET_VALUE =
  /(AKIA|ASIA)[A-Z0-9]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----/;

function checkStrings(input: PolicyInput, add: (m: string) => void) {
  const sources: [string, string][] = [
    ...walkStrings(input.template).map(
      ([path, value]) => [`template ${path}`, value] as [string, string],
    ),
    ...Object.entries(input.scripts).flatMap(([name, text]) =>
      text
        .split('\n')
        .map(
          (line, index) => [`${name}:${index + 1}`, line] as [string, string],
        ),
    ),
  ];
  for (const [where, value] of sources) {
    if (INSECURE_TRANSFER.test(value)) {
      add(`${where}: TLS verification turned off (-k/--insecure)`);
    }
    if (IP_FORWARD_ON.test(value)) {
      add(`${where}: ip_forward = 1`);
    }
    if (SECRET_VALUE.test(value)) {
      add(`${where}: a key or credential in plain text`);
    }
  }

  for (const [path, value] of walkStrings(input.template)) {
    const name = (path.split('.').at(-1) ?? '').replace(/\[\d+\]/g, '');
    if (SECRET_NAME.test(name) && value !== '' && !value.startsWith('${')) {
      add(`template ${path}: a secret in plain text`);
    }
  }
  for (const [name, declarations] of Object.entries(
    asObject(input.template.variable),
  )) {
    const variable = blocks(declarations)[0] ?? {};
    if (SECRET_NAME.test(name) && variable.default !== undefined) {
      add(`variable ${name}: a secret with a default value`);
    }
  }
}

/** Every string of a parsed template, with its path (a.b[0].c). */
function walkStrings(value: unknown, path = ''): [string, string][] {
  if (typeof value === 'string') {
    return [[path, value]];
  }
  if (Array.isArray(value)) {
    return value.flatMap((item, index) =>
      walkStrings(item, `${path}[${index}]`),
    );
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      walkStrings(item, path === '' ? key : `${path}.${key}`),
    );
  }
  return [];
}

// --------------------------------------------------------------- helpers

function asObject(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Json)
    : {};
}

function blocks(value: unknown): Json[] {
  return Array.isArray(value) ? value.map(asObject) : [];
}

function isBlockList(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((item) => item !== null && typeof item === 'object')
  );
}

function isNonEmpty(value: Json): boolean {
  return Object.keys(value).length > 0;
}
