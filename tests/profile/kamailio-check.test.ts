import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import {
  loadProfile,
  PROFILE_NAMES,
  type ProfileName,
  removeDir,
  run,
  tempDir,
} from './support.ts';

const LOOPBACK = { SBC_PRIVATE_IP: '127.0.0.1', SBC_PUBLIC_IP: '127.0.0.1' };

/** `kamailio -c -f FILE`: exit code and everything it printed. */
async function checkConfig(
  cfg: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; output: string }> {
  const base = { ...process.env };
  delete base.SBC_PRIVATE_IP;
  delete base.SBC_PUBLIC_IP;
  try {
    const { stdout, stderr } = await run('kamailio', ['-c', '-f', cfg], {
      env: { ...base, ...env },
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as {
      code?: number;
      stdout?: string;
      stderr?: string;
    };
    return {
      code: failure.code ?? -1,
      output: `${failure.stdout ?? ''}${failure.stderr ?? ''}`,
    };
  }
}

describeWithSystem(
  'kamailio -c on the rendered kamailio.cfg',
  { tools: [TOOLS.kamailio] },
  () => {
    let dir: string;

    /** Renders a profile into its own tree; returns kamailio.cfg's path. */
    async function renderTree(name: ProfileName): Promise<string> {
      const root = join(dir, name);
      await writeRenderedTree(
        root,
        renderProfile(loadProfile(name), {
          kamailioDir: join(root, 'etc', 'kamailio'),
          smokeTestSources: ['198.18.0.1/32'],
        }),
      );
      return join(root, 'etc', 'kamailio', 'kamailio.cfg');
    }

    beforeAll(async () => {
      dir = await tempDir('kamailio-c');
    });

    afterAll(async () => {
      await removeDir(dir);
    });

    it.each(PROFILE_NAMES)(
      'accepts the config of %s with the addresses from the environment',
      async (name) => {
        // Prepare
        const cfg = await renderTree(name);

        // Act
        const { code, output } = await checkConfig(cfg, LOOPBACK);

        // Assess
        expect(code, output).toBe(0);
        expect(output).toContain('config file ok');
        expect(output).toMatch(
          /udp: 127\.0\.0\.1 \[127\.0\.0\.1\]:5060 advertise 127\.0\.0\.1:5060/,
        );
        expect(output).toMatch(
          /tls: 127\.0\.0\.1 \[127\.0\.0\.1\]:5061 advertise 127\.0\.0\.1:5061/,
        );
      },
    );

    it('advertises the public address it is given, apart from the bound one', async () => {
      // Prepare
      const cfg = await renderTree('example');

      // Act
      const { code, output } = await checkConfig(cfg, {
        SBC_PRIVATE_IP: '127.0.0.1',
        SBC_PUBLIC_IP: '203.0.113.80',
      });

      // Assess
      expect(code, output).toBe(0);
      expect(output).toMatch(
        /tcp: 127\.0\.0\.1 \[127\.0\.0\.1\]:5060 advertise 203\.0\.113\.80:5060/,
      );
    });

    it('refuses to start without the first-boot addresses', async () => {
      // Prepare
      const cfg = await renderTree('example');

      // Act
      const { code, output } = await checkConfig(cfg, {});

      // Assess
      expect(code).not.toBe(0);
      expect(output).toContain('env variable not defined [SBC_PRIVATE_IP]');
    });

    it('fails on a config with an unknown function (the check can fail)', async () => {
      // Prepare
      const cfg = await renderTree('one-peer');
      const broken = join(dir, 'broken.cfg');
      const text = await readFile(cfg, 'utf8');
      await writeFile(broken, text.replace('loose_route()', 'loose_routes()'));

      // Act
      const { code, output } = await checkConfig(broken, LOOPBACK);

      // Assess
      expect(code).not.toBe(0);
      expect(output).toMatch(/loose_routes/);
    });
  },
);
