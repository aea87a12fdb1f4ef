import { copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { describeWithSystem } from '../support/system.ts';
import { loadProfile, removeDir, run, tempDir } from './support.ts';

const SYSTEMD_ANALYZE = {
  command: 'systemd-analyze',
  debianPackage: 'systemd',
};
const SSHD = { command: 'sshd', debianPackage: 'openssh-server' };
const SSH_KEYGEN = { command: 'ssh-keygen', debianPackage: 'openssh-client' };
const UNSHARE = { command: 'unshare', debianPackage: 'util-linux' };

/** The units the drop-ins extend, as Debian 12's packages install them. */
const UNITS = {
  kamailio: '/lib/systemd/system/kamailio.service',
  'rtpengine-daemon': '/lib/systemd/system/rtpengine-daemon.service',
};

describeWithSystem(
  'the rendered systemd drop-ins',
  {
    tools: [
      SYSTEMD_ANALYZE,
      { command: 'kamailio', debianPackage: 'kamailio' },
    ],
  },
  () => {
    let dir: string;

    /** The Debian units with the rendered drop-ins beside them. */
    async function unitDir(name: string): Promise<string> {
      const units = join(dir, name);
      const tree = join(dir, `${name}-tree`);
      await writeRenderedTree(tree, renderProfile(loadProfile('example')));
      await mkdir(units, { recursive: true });
      for (const [unit, path] of Object.entries(UNITS)) {
        await copyFile(path, join(units, `${unit}.service`));
        await cp(
          join(tree, 'etc/systemd/system', `${unit}.service.d`),
          join(units, `${unit}.service.d`),
          { recursive: true },
        );
      }
      return units;
    }

    /** `systemd-analyze verify` of both units, drop-ins included. */
    async function verify(units: string): Promise<string> {
      const { stdout, stderr } = await run(
        'systemd-analyze',
        [
          'verify',
          '--man=no',
          ...Object.keys(UNITS).map((unit) => join(units, `${unit}.service`)),
        ],
        { env: { ...process.env, SYSTEMD_UNIT_PATH: `${units}:` } },
      );
      return stdout + stderr;
    }

    beforeAll(async () => {
      dir = await tempDir('units');
    });

    afterAll(async () => {
      await removeDir(dir);
    });

    it('passes systemd-analyze verify with the Debian units', async () => {
      // Prepare
      const units = await unitDir('good');

      // Act
      const output = await verify(units);

      // Assess
      expect(output).toBe('');
    });

    it('fails verify on a drop-in that starts a missing binary', async () => {
      // Prepare
      const units = await unitDir('broken');
      const dropIn = join(units, 'rtpengine-daemon.service.d', '10-sbc.conf');
      const text = await readFile(dropIn, 'utf8');
      await writeFile(
        dropIn,
        text.replace(
          'ExecStart=/usr/bin/rtpengine',
          'ExecStart=/usr/bin/rtpengin',
        ),
      );

      // Act
      const verifying = verify(units);

      // Assess
      await expect(verifying).rejects.toThrow(/rtpengin is not executable/);
    });
  },
);

describeWithSystem(
  'the rendered sshd drop-in',
  { root: true, tools: [SSHD, SSH_KEYGEN, UNSHARE] },
  () => {
    let dir: string;

    beforeAll(async () => {
      dir = await tempDir('sshd');
    });

    afterAll(async () => {
      await removeDir(dir);
    });

    it('wins over weaker settings later in sshd_config', async () => {
      // Prepare
      const tree = join(dir, 'tree');
      await writeRenderedTree(tree, renderProfile(loadProfile('ipv6-peers')));
      await run('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-f',
        join(dir, 'host_key'),
      ]);
      const main = join(dir, 'sshd_config');
      await writeFile(
        main,
        [
          `Include ${tree}/etc/ssh/sshd_config.d/*.conf`,
          `HostKey ${dir}/host_key`,
          'PermitRootLogin yes',
          'PasswordAuthentication yes',
          'X11Forwarding yes',
          'MaxAuthTries 10',
          '',
        ].join('\n'),
      );

      // Act: sshd -T wants /run/sshd; a private tmpfs over /run keeps the
      // host's /run untouched.
      const { stdout } = await run('unshare', [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs sbc-sshd-test /run && mkdir /run/sshd && ' +
          'exec sshd -T -f "$1"',
        'sh',
        main,
      ]);

      // Assess
      const effective = new Set(stdout.split('\n'));
      for (const line of [
        'permitrootlogin no',
        'passwordauthentication no',
        'kbdinteractiveauthentication no',
        'x11forwarding no',
        'allowtcpforwarding no',
        'disableforwarding yes',
        'maxauthtries 4',
        'logingracetime 30',
        'authenticationmethods publickey',
      ]) {
        expect(effective, line).toContain(line);
      }
    });
  },
);
