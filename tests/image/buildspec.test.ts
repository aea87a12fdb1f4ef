import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PACKER_DIR } from '../../functions/lib/local/rootfs.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';

const run = promisify(execFile);

interface Buildspec {
  version: number;
  env: { shell: string; variables: Record<string, string> };
  phases: Record<
    string,
    {
      commands: string[];
      'runtime-versions'?: Record<string, unknown>;
      'on-failure'?: string;
    }
  >;
  artifacts: { files: string[]; 'discard-paths': string | boolean };
}

/** The variables the pipeline's StartBuild passes. */
const START_BUILD_VARIABLES = [
  'PROFILE_BUCKET',
  'PROFILE_KEY',
  'PROFILE_VERSION_ID',
  'RUN_ID',
  'BASE_IMAGE_ID',
  'PROFILE_DIGEST',
  'KMS_KEY_ID',
  'SOURCE_REVISION',
];

let text: string;
let spec: Buildspec;
let commands: string[];

beforeAll(async () => {
  text = await readFile(join(PACKER_DIR, 'buildspec.yml'), 'utf8');
  spec = parse(text) as Buildspec;
  commands = ['install', 'pre_build', 'build', 'post_build'].flatMap(
    (phase) => spec.phases[phase]?.commands ?? [],
  );
});

/** Index of the first command containing `needle`, -1 when none does. */
function position(needle: string): number {
  return commands.findIndex((command) => command.includes(needle));
}

describe('buildspec', () => {
  it('is a version 0.2 buildspec on Node 22 and bash', () => {
    expect(spec.version).toBe(0.2);
    expect(spec.env.shell).toBe('bash');
    expect(spec.phases.install?.['runtime-versions']).toEqual({ nodejs: 22 });
  });

  it('pins Packer and verifies the download by its SHA-256', () => {
    // Prepare
    const { PACKER_VERSION, PACKER_SHA256 } = spec.env.variables;
    const install = spec.phases.install?.commands.join('\n') ?? '';

    // Assess
    expect(PACKER_VERSION).toMatch(/^1\.(1[1-9]|[2-9]\d)\.\d+$/);
    expect(PACKER_SHA256).toMatch(/^[0-9a-f]{64}$/);
    expect(install).toMatch(
      /"https:\/\/releases\.hashicorp\.com\/packer\/\$\{PACKER_VERSION\}"/,
    );
    expect(install).toMatch(/packer_\$\{PACKER_VERSION\}_linux_amd64\.zip/);
    expect(install).toMatch(
      /\$\{PACKER_SHA256\}\s+\/tmp\/packer\.zip.*sha256sum --check/,
    );
    expect(install.indexOf('sha256sum --check')).toBeLessThan(
      install.indexOf('unzip'),
    );
    expect(install).not.toMatch(/\s(-k|--insecure)\b/);
  });

  it('runs npm ci, renders the profile, then init, validate and build', () => {
    // Act
    const steps = [
      position('npm ci'),
      position('s3api get-object'),
      position('render-config'),
      position('packer init'),
      position('packer validate'),
      position('packer build'),
    ];

    // Assess: every step is there, in this order
    expect(steps.every((index) => index >= 0)).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(commands[position('packer build')]).toContain(
      '-var-file=build/run.pkrvars.json packer/sbc.pkr.hcl',
    );
    expect(commands[position('packer validate')]).toContain(
      '-var-file=build/run.pkrvars.json packer/sbc.pkr.hcl',
    );
  });

  it('fetches the exact profile version and checks its digest', () => {
    // Prepare
    const fetch = commands[position('s3api get-object')] ?? '';

    // Assess
    expect(fetch).toContain('--version-id "$PROFILE_VERSION_ID"');
    expect(fetch).toContain('"$PROFILE_DIGEST"');
  });

  it('names and checks every StartBuild variable', () => {
    // Prepare
    const header = text.split('\nversion:')[0] ?? '';
    const check = spec.phases.pre_build?.commands[0] ?? '';

    // Assess
    for (const name of START_BUILD_VARIABLES) {
      expect(header, `${name} is documented`).toContain(name);
      expect(check, `${name} is checked`).toContain(name);
    }
  });

  it('keeps packer-manifest.json, without its path, as the artifact', () => {
    expect(spec.artifacts.files).toEqual(['packer-manifest.json']);
    expect(spec.artifacts['discard-paths']).toMatch(/^yes$/);
  });

  it('stops at the first failing phase', () => {
    for (const phase of ['install', 'pre_build', 'build']) {
      expect(spec.phases[phase]?.['on-failure'], phase).toBe('ABORT');
    }
  });
});

describeWithSystem('buildspec commands', { tools: [TOOLS.shellcheck] }, () => {
  it('pass shellcheck, each with set -euo pipefail when it spans lines', async () => {
    for (const command of commands) {
      // Prepare
      const script = `#!/usr/bin/env bash\n${command}\n`;

      // Act: execFile rejects with shellcheck's report on any finding
      const result = await run('bash', [
        '-c',
        'printf %s "$1" | shellcheck -s bash -',
        'sh',
        script,
      ]);

      // Assess
      expect(result.stdout, command).toBe('');
      if (command.includes('\n')) {
        expect(command, command).toMatch(/^set -euo pipefail$/m);
      }
    }
  });
});
