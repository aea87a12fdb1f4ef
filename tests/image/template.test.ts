import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PACKER_DIR,
  provisioningScripts,
  templateDigest,
} from '../../functions/lib/local/rootfs.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  parseTemplate,
  REQUIRED_TAGS,
  templateViolations,
} from './template-policy.ts';

const run = promisify(execFile);
const TEMPLATE = join(PACKER_DIR, 'sbc.pkr.hcl');

let text: string;
let scripts: Record<string, string>;

beforeAll(async () => {
  text = await readFile(TEMPLATE, 'utf8');
  scripts = {};
  for (const name of await provisioningScripts()) {
    scripts[name] = await readFile(join(PACKER_DIR, 'scripts', name), 'utf8');
  }
  // The boot-time scripts call AWS and IMDS with curl: held to the same rules.
  const sbin = join(PACKER_DIR, 'files/usr/local/sbin');
  for (const name of await readdir(sbin)) {
    scripts[name] = await readFile(join(sbin, name), 'utf8');
  }
});

/** An inline shell provisioner block, followed by a blank line. */
function shellStep(command: string): string {
  return `provisioner "shell" {\n    inline = ["${command}"]\n  }\n\n  `;
}

/** The violations of the template after one textual change. */
async function violationsAfter(
  from: string | RegExp,
  to: string,
  extraScripts: Record<string, string> = {},
): Promise<string[]> {
  const changed = text.replace(from, to);
  expect(changed, `the change of ${String(from)} applies`).not.toBe(text);
  return templateViolations({
    text: changed,
    template: await parseTemplate(changed),
    scripts: { ...scripts, ...extraScripts },
  });
}

describeWithSystem('packer fmt', { tools: [TOOLS.packer] }, () => {
  it('finds the template formatted', async () => {
    // Prepare / Act
    const result = await run('packer', ['fmt', '-check', '-diff', TEMPLATE]);

    // Assess: exit 0 (execFile rejects otherwise) and no diff printed
    expect(result.stdout).toBe('');
  });

  it('rejects a template that is not formatted', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'sbc-fmt-'));
    const file = join(dir, 'bad.pkr.hcl');
    await writeFile(file, text.replace('  region        =', 'region =   '));

    // Act / Assess
    try {
      await expect(run('packer', ['fmt', '-check', file])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('templateViolations', () => {
  it('finds no violation in the template', async () => {
    // Prepare
    const template = await parseTemplate(text);

    // Act
    const violations = templateViolations({ text, template, scripts });

    // Assess
    expect(violations).toEqual([]);
  });

  it.each([
    [
      'an unpinned plugin',
      'version = "= 1.3.10"',
      'version = ">= 1.3.0"',
      'plugin amazon is not pinned',
    ],
    [
      'a second image owner',
      'owners      = ["136693071363"]',
      'owners      = ["136693071363", "self"]',
      'owners must be ["136693071363"] only',
    ],
    [
      'an older image than the newest',
      'most_recent = true',
      'most_recent = false',
      'most_recent must be true',
    ],
    [
      'another name pattern',
      'name                = "debian-12-amd64-*"',
      'name                = "debian-*"',
      'name must be "debian-12-amd64-*"',
    ],
    [
      'no image-id filter',
      /\s+image-id\s+= var.base_image_id/,
      '',
      'image-id to var.base_image_id',
    ],
    [
      'a hard-coded instance type',
      'instance_type = var.instance_type',
      'instance_type = "t3.small"',
      'instance_type must be the variable',
    ],
    [
      'an unencrypted image',
      'encrypt_boot = true',
      'encrypt_boot = false',
      'encrypt_boot must be true',
    ],
    [
      'IMDSv1 allowed',
      'imds_support = "v2.0"',
      'imds_support = "v1.0"',
      'imds_support must be "v2.0"',
    ],
    [
      'a gp2 volume',
      'volume_type           = "gp3"',
      'volume_type           = "gp2"',
      'is not gp3',
    ],
    [
      'SSH open to the world',
      'temporary_security_group_source_public_ip = true',
      'temporary_security_group_source_cidrs = ["0.0.0.0/0"]',
      'is not one address',
    ],
    [
      'SSH open by default',
      'temporary_security_group_source_public_ip = true',
      'temporary_security_group_source_public_ip = false',
      'SSH is open to any address',
    ],
    [
      'no aws_polling',
      /aws_polling \{[^}]*\}/,
      '',
      'aws_polling with delay_seconds and max_attempts',
    ],
    [
      'a missing provenance tag',
      /\s+"sbc-ami:base-image-id"\s+= var.base_image_id/,
      '',
      'run_tags "sbc-ami:base-image-id"',
    ],
    [
      'no deprecation date',
      /\s+deprecate_at\s+= local.deprecate_at/,
      '',
      'deprecate_at is not set',
    ],
    [
      'a provisioners block',
      'post-processor "manifest" {',
      'provisioners {\n    shell = []\n  }\n\n  post-processor "manifest" {',
      'a "provisioners" block does not exist',
    ],
    [
      'a misspelt block in the source',
      'launch_block_device_mappings {',
      'launch_block_device_mapping {',
      'unknown block "launch_block_device_mapping"',
    ],
    [
      'curl -k',
      'post-processor "manifest" {',
      `${shellStep('curl -fsSk https://x')}post-processor "manifest" {`,
      'TLS verification turned off',
    ],
    [
      'curl --insecure',
      'post-processor "manifest" {',
      `${shellStep('curl --insecure https://x')}post-processor "manifest" {`,
      'TLS verification turned off',
    ],
    [
      'a shell step after the validation',
      'post-processor "manifest" {',
      `${shellStep('true')}post-processor "manifest" {`,
      'the last shell provisioner is not the validation script',
    ],
    [
      'a file step after the validation',
      'post-processor "manifest" {',
      'provisioner "file" {\n    source = "a"\n    destination = "/tmp"\n  }\n' +
        'post-processor "manifest" {',
      'the validation step is not the last provisioner',
    ],
    [
      'a secret in plain text',
      'imds_support = "v2.0"',
      'imds_support = "v2.0"\n  secret_key = "wJalrXUtnFEMI"',
      'sbc[0].secret_key: a secret in plain text',
    ],
    [
      'an access key in plain text',
      'imds_support = "v2.0"',
      'imds_support = "v2.0"\n  user_data = "AKIAABCDEFGHIJKLMNOP"',
      'a key or credential in plain text',
    ],
    [
      'ip_forward = 1',
      'post-processor "manifest" {',
      `${shellStep('echo net.ipv4.ip_forward = 1 >> /etc/x.conf')}post-processor "manifest" {`,
      'ip_forward = 1',
    ],
    [
      'an inline step without set -euo pipefail',
      'post-processor "manifest" {',
      `${shellStep('apt-get update')}post-processor "manifest" {`,
      'does not start with set -euo pipefail',
    ],
    [
      'a public image',
      'imds_support = "v2.0"',
      'imds_support = "v2.0"\n  ami_groups = ["all"]',
      'ami_groups contains "all"',
    ],
    [
      'a manifest without the run id',
      /\s+run_id\s+= var.run_id\n(\s+profile\s+=)/,
      '\n$1',
      'custom_data must carry run_id',
    ],
  ])('reports %s', async (_, from, to, expected) => {
    // Prepare / Act
    const violations = await violationsAfter(from, to);

    // Assess
    expect(violations.join('\n')).toContain(expected);
  });

  it('reports curl -k in a provisioning script', async () => {
    // Prepare
    const template = await parseTemplate(text);
    const bad = { '10-packages.sh': 'curl -k https://example.test/x\n' };

    // Act
    const violations = templateViolations({
      text,
      template,
      scripts: { ...scripts, ...bad },
    });

    // Assess
    expect(violations).toEqual([
      '10-packages.sh:1: TLS verification turned off (-k/--insecure)',
    ]);
  });

  it('requires every provenance tag the retention policy reads', () => {
    // Assess: the policy and constants.ts name the same keys
    expect(Object.keys(REQUIRED_TAGS).sort()).toEqual(
      [
        'ManagedBy',
        'sbc-ami:base-image-id',
        'sbc-ami:profile',
        'sbc-ami:profile-digest',
        'sbc-ami:run-id',
        'sbc-ami:source-revision',
        'sbc-ami:template-digest',
      ].sort(),
    );
  });
});

describe('the template and the local build', () => {
  it('runs the same scripts in the same order as the chroot build', async () => {
    // Prepare
    const template = await parseTemplate(text);
    const build = (template.build as Record<string, unknown>[])[0] ?? {};
    const shells = (build.provisioner as Record<string, unknown>).shell as {
      script: string;
    }[];

    // Act
    const inTemplate = shells.map((shell) => basename(shell.script));

    // Assess
    expect(inTemplate).toEqual(await provisioningScripts());
    expect(inTemplate.at(-1)).toBe('90-validate.sh');
  });

  it('computes the template digest as the buildspec does', async () => {
    // Prepare: the buildspec's shell pipeline, run from the project root
    const { stdout } = await run(
      'bash',
      [
        '-c',
        'find packer -type f ! -name buildspec.yml -print0 | LC_ALL=C sort -z ' +
          "| xargs -0 sha256sum | sha256sum | cut -d' ' -f1",
      ],
      { cwd: join(PACKER_DIR, '..') },
    );

    // Act
    const digest = await templateDigest();

    // Assess
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(digest).toBe(stdout.trim());
  });
});
