import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRootfs,
  cleanupRootfs,
  mountsUnder,
  PACKER_DIR,
  type RootfsBuild,
} from '../../functions/lib/local/rootfs.ts';
import {
  readProfileFile,
  renderProfile,
  writeRenderedTree,
} from '../../functions/lib/profile/index.ts';
import { TOOLS } from '../../functions/lib/system/tools.ts';
import { describeWithSystem } from '../support/system.ts';
import { type FakeAws, type Instance, startFakeAws } from './fake-aws.ts';

const exec = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
/** Persists between runs (gitignored): the debootstrap base and packages. */
const CACHE_DIR = join(REPO, '.cache');
const EXAMPLE_PROFILE = join(REPO, 'examples/profiles/genesys-byoc.json');
const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';
/** A whole build: debootstrap (cold cache) plus the package install. */
const BUILD_TIMEOUT = 420_000;

const NEEDS = {
  root: true,
  tools: [
    TOOLS.debootstrap,
    TOOLS.chroot,
    TOOLS.mount,
    TOOLS.tar,
    TOOLS.ip,
    TOOLS.nft,
    TOOLS.openssl,
  ],
};

interface Result {
  code: number;
  output: string;
}

/** Runs a command, resolving with its exit code and combined output. */
async function sh(command: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(command, args, {
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      output: (failed.stdout ?? '') + (failed.stderr ?? ''),
    };
  }
}

/** A command inside the image, with a clean environment. */
function inImage(root: string, env: Record<string, string>, args: string[]) {
  const variables = Object.entries({ PATH: CHROOT_PATH, ...env }).map(
    ([key, value]) => `${key}=${value}`,
  );
  return sh('chroot', [root, '/usr/bin/env', '-i', ...variables, ...args]);
}

/**
 * A command inside the image, in new network, mount and pid namespaces: only
 * lo is up, and the image's /proc (bash's process substitution needs it)
 * disappears with the namespace.
 */
function inImageOffline(
  root: string,
  env: Record<string, string>,
  args: string[],
) {
  const variables = Object.entries({ PATH: CHROOT_PATH, ...env }).map(
    ([key, value]) => `${key}=${value}`,
  );
  return sh('unshare', [
    '--net',
    '--mount',
    '--pid',
    '--fork',
    `--mount-proc=${join(root, 'proc')}`,
    '--',
    'sh',
    '-c',
    'ip link set lo up && exec "$@"',
    'sh',
    'chroot',
    root,
    '/usr/bin/env',
    '-i',
    ...variables,
    ...args,
  ]);
}

/** Processes whose root directory is inside `dir`. */
async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry)) {
      const root = await readlink(`/proc/${entry}/root`).catch(() => '');
      if (root.startsWith(dir)) {
        pids.push(Number(entry));
      }
    }
  }
  return pids;
}

async function renderExample(dir: string): Promise<void> {
  const { profile } = await readProfileFile(EXAMPLE_PROFILE);
  await writeRenderedTree(dir, renderProfile(profile));
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

describeWithSystem('buildRootfs', NEEDS, () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'sbc-rootfs-test-'));
  });

  afterAll(async () => {
    await cleanupRootfs(scratch);
  });

  describe('when a provisioning step fails', () => {
    it(
      'rejects naming the step and leaves no mount or process behind',
      async () => {
        // Prepare: a rendered tree with a symlink, which install-tree refuses
        const tree = join(scratch, 'bad-tree');
        await renderExample(tree);
        await symlink('/etc/shadow', join(tree, 'etc/kamailio/leak.cfg'));
        const workDir = join(scratch, 'failing');
        const lines: string[] = [];

        // Act
        const outcome = buildRootfs({
          workDir,
          cacheDir: CACHE_DIR,
          renderedTree: tree,
          runId: 'test-failing',
          log: (line) => lines.push(line),
        });

        // Assess
        await expect(outcome).rejects.toMatchObject({
          name: 'BuildFailedError',
          message: 'provisioning step 20-install-tree.sh failed',
        });
        expect(lines.join('\n')).toContain(
          'only regular files and directories may be installed',
        );
        expect(await mountsUnder(workDir)).toEqual([]);
        expect(await processesIn(workDir)).toEqual([]);
        await cleanupRootfs(workDir);
        await expect(stat(workDir)).rejects.toMatchObject({ code: 'ENOENT' });
      },
      BUILD_TIMEOUT,
    );
  });

  describe('when the build is aborted', () => {
    it(
      'stops the running step and leaves no mount or process behind',
      async () => {
        // Prepare: abort once the package step is running in the chroot
        const tree = join(scratch, 'tree-abort');
        await renderExample(tree);
        const workDir = join(scratch, 'aborted');
        const controller = new AbortController();
        const log = (line: string) => {
          if (line.startsWith('step 10-packages.sh')) {
            setTimeout(() => controller.abort(), 1500);
          }
        };

        // Act
        const outcome = buildRootfs({
          workDir,
          cacheDir: CACHE_DIR,
          renderedTree: tree,
          runId: 'test-abort',
          log,
          signal: controller.signal,
        });

        // Assess
        await expect(outcome).rejects.toMatchObject({ name: 'AbortError' });
        expect(await mountsUnder(workDir)).toEqual([]);
        expect(await processesIn(workDir)).toEqual([]);
        await cleanupRootfs(workDir);
      },
      BUILD_TIMEOUT,
    );
  });

  describe('the built image', () => {
    let build: RootfsBuild;
    let root: string;
    const lines: string[] = [];

    beforeAll(async () => {
      const tree = join(scratch, 'tree');
      await renderExample(tree);
      build = await buildRootfs({
        workDir: join(scratch, 'image'),
        cacheDir: CACHE_DIR,
        renderedTree: tree,
        runId: 'test-build',
        log: (line) => lines.push(line),
      });
      root = build.rootfsDir;
    }, BUILD_TIMEOUT);

    it('is packed with its digest and leaves nothing mounted', async () => {
      // Act
      const listing = await sh('tar', ['-tf', build.imageFile]);

      // Assess
      expect(build.digest).toBe(await sha256(build.imageFile));
      expect(listing.output).toContain('./etc/kamailio/kamailio.cfg');
      expect(listing.output).toContain('./usr/local/sbin/sbc-first-boot');
      expect(await mountsUnder(root)).toEqual([]);
      expect(Object.keys(build.timings)).toEqual(
        expect.arrayContaining(['base', '10-packages.sh', '90-validate.sh']),
      );
    });

    it('printed expected against actual in the validation step', () => {
      // Assess
      const log = lines.join('\n');
      expect(log).toMatch(/\[90-validate\.sh\] \d+ checks, 0 mismatches/);
      expect(log).toContain('validation passed');
    });

    it('passes kamailio -c on the rendered config inside the chroot', async () => {
      // Act
      const result = await inImageOffline(
        root,
        { SBC_PRIVATE_IP: '127.0.0.1', SBC_PUBLIC_IP: '127.0.0.1' },
        ['kamailio', '-c', '-f', '/etc/kamailio/kamailio.cfg'],
      );

      // Assess
      expect(result.output).toContain('config file ok');
      expect(result.code).toBe(0);
    });

    it('has a ruleset nft -c accepts in a test network namespace', async () => {
      // Act
      const result = await inImageOffline(root, {}, [
        'nft',
        '-c',
        '-f',
        '/etc/nftables.conf',
      ]);

      // Assess
      expect(result).toEqual({ code: 0, output: '' });
    });

    it('sets the hardening sysctl values', async () => {
      // Prepare
      const text = await readFile(
        join(root, 'etc/sysctl.d/60-sbc-hardening.conf'),
        'utf8',
      );
      const values = Object.fromEntries(
        [...text.matchAll(/^([a-z0-9_.]+)\s*=\s*(\S+)$/gm)].map((m) => [
          m[1],
          m[2],
        ]),
      );

      // Assess
      expect(values).toMatchObject({
        'net.ipv4.ip_forward': '0',
        'net.ipv4.conf.all.send_redirects': '0',
        'net.ipv4.conf.all.accept_redirects': '0',
        'net.ipv4.conf.all.accept_source_route': '0',
        'net.ipv4.conf.all.log_martians': '1',
        'net.ipv4.tcp_syncookies': '1',
        'kernel.randomize_va_space': '2',
        'kernel.yama.ptrace_scope': '1',
        'fs.suid_dumpable': '0',
        'kernel.sysrq': '0',
      });
      expect(['1', '2']).toContain(values['net.ipv4.conf.all.rp_filter']);
    });

    it('has the file modes and owners of the policy', async () => {
      // Prepare
      const group = await readFile(join(root, 'etc/group'), 'utf8');
      const kamailioGid = Number(/^kamailio:x:(\d+):/m.exec(group)?.[1]);
      const { profile } = await readProfileFile(EXAMPLE_PROFILE);

      // Act
      const tls = await stat(join(root, 'etc/kamailio/tls'));
      const firstBoot = await stat(join(root, 'usr/local/sbin/sbc-first-boot'));
      const auditd = await stat(join(root, 'etc/audit/auditd.conf'));

      // Assess
      expect(tls.mode & 0o7777).toBe(0o750);
      expect([tls.uid, tls.gid]).toEqual([0, kamailioGid]);
      expect(await readdir(join(root, 'etc/kamailio/tls'))).toEqual([]);
      expect(firstBoot.mode & 0o7777).toBe(0o755);
      expect(auditd.mode & 0o7777).toBe(0o640);
      for (const file of renderProfile(profile)) {
        const installed = await stat(join(root, file.path));
        expect(installed.mode & 0o7777, file.path).toBe(file.mode);
        expect(installed.uid, file.path).toBe(0);
      }
    });

    it('has the sshd settings in effect', async () => {
      // Prepare: sshd -T needs a host key; a throwaway one, removed after
      await inImage(root, {}, [
        'ssh-keygen',
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-f',
        '/tmp/test-host-key',
      ]);
      await mkdir(join(root, 'run/sshd'), { recursive: true });

      // Act
      const result = await inImage(root, {}, [
        'sshd',
        '-T',
        '-h',
        '/tmp/test-host-key',
      ]);
      await rm(join(root, 'tmp/test-host-key'), { force: true });
      await rm(join(root, 'tmp/test-host-key.pub'), { force: true });
      await rm(join(root, 'run/sshd'), { recursive: true, force: true });

      // Assess
      expect(result.code).toBe(0);
      for (const setting of [
        'permitrootlogin no',
        'passwordauthentication no',
        'kbdinteractiveauthentication no',
        'allowtcpforwarding no',
        'allowagentforwarding no',
        'x11forwarding no',
        'maxauthtries 4',
      ]) {
        expect(result.output.split('\n')).toContain(setting);
      }
    });

    it('holds no private key, password or credential file', async () => {
      // Act
      const pem = await sh('grep', [
        '-rIlE',
        '--exclude-dir=proc',
        '^-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----',
        root,
      ]);
      const keys = await sh('find', [
        root,
        '(',
        '-name',
        '*.key',
        '-o',
        '-name',
        'ssh_host_*',
        '-o',
        '-path',
        '*/.aws/*',
        ')',
      ]);
      const shadow = await readFile(join(root, 'etc/shadow'), 'utf8');

      // Assess: grep exits 1 when nothing matches
      expect(pem).toEqual({ code: 1, output: '' });
      expect(keys).toEqual({ code: 0, output: '' });
      const withPassword = shadow
        .split('\n')
        .filter((line) => line.length > 0)
        .filter((line) => !/^[^:]+:[!*]/.test(line));
      expect(withPassword).toEqual([]);
    });

    it('enables the services for boot', async () => {
      for (const unit of [
        'kamailio.service',
        'rtpengine-daemon.service',
        'nftables.service',
        'chrony.service',
        'sbc-first-boot.service',
        'sbc-cert-check.timer',
      ]) {
        // Act
        const result = await inImage(root, {}, [
          'systemctl',
          'is-enabled',
          unit,
        ]);

        // Assess
        expect(result.output.trim(), unit).toBe('enabled');
      }
      const defaults = await readFile(
        join(root, 'etc/default/rtpengine-daemon'),
        'utf8',
      );
      expect(defaults).toMatch(/^MANAGE_IPTABLES=no$/m);
    });

    describe('sbc-first-boot', () => {
      const instance: Instance = {
        privateIp: '198.18.0.10',
        publicIp: '198.18.0.20',
        region: 'eu-west-1',
        role: 'sbc-instance-role',
        credentials: {
          accessKeyId: 'ASIAFAKEFORTESTS0001',
          secretAccessKey: 'test-secret-key-for-the-fake-endpoint',
          sessionToken: 'test-session-token',
        },
      };
      let aws: FakeAws;
      let pki: string;
      let certificate: string;
      let key: string;
      let otherKey: string;
      let settings: string;

      beforeAll(async () => {
        pki = await mkdtemp(join(tmpdir(), 'sbc-pki-'));
        const openssl = async (...args: string[]) => {
          const result = await sh('openssl', args);
          expect(result.code, result.output).toBe(0);
        };
        await openssl(
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(pki, 'endpoint.key'),
          '-out',
          join(pki, 'endpoint.crt'),
        );
        await openssl(
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '90',
          '-subj',
          '/CN=sbc.example.com',
          '-addext',
          'subjectAltName=DNS:sbc.example.com',
          '-keyout',
          join(pki, 'sbc.key'),
          '-out',
          join(pki, 'sbc.crt'),
        );
        await openssl(
          'genpkey',
          '-algorithm',
          'RSA',
          '-pkeyopt',
          'rsa_keygen_bits:2048',
          '-out',
          join(pki, 'other.key'),
        );
        certificate = await readFile(join(pki, 'sbc.crt'), 'utf8');
        key = await readFile(join(pki, 'sbc.key'), 'utf8');
        otherKey = await readFile(join(pki, 'other.key'), 'utf8');
        aws = await startFakeAws(instance, {
          cert: await readFile(join(pki, 'endpoint.crt'), 'utf8'),
          key: await readFile(join(pki, 'endpoint.key'), 'utf8'),
        });
        await copyFile(
          join(pki, 'endpoint.crt'),
          join(root, 'tmp/test-ca.pem'),
        );
        settings = await readFile(join(root, 'etc/sbc-ami/sbc.env'), 'utf8');
      });

      afterAll(async () => {
        await aws?.close();
        await rm(pki, { recursive: true, force: true });
        await writeFile(join(root, 'etc/sbc-ami/sbc.env'), settings);
        await removeBootOutputs();
        await rm(join(root, 'tmp/test-ca.pem'), { force: true });
      });

      async function removeBootOutputs() {
        for (const path of [
          'etc/kamailio/tls/sbc.crt',
          'etc/kamailio/tls/sbc.key',
          'etc/sbc-ami/addresses.env',
        ]) {
          await rm(join(root, path), { force: true });
        }
      }

      function setting(name: string): string {
        return new RegExp(`^${name}=(.*)$`, 'm').exec(settings)?.[1] ?? '';
      }

      function firstBoot() {
        return inImage(
          root,
          {
            AWS_EC2_METADATA_SERVICE_ENDPOINT: aws.imdsEndpoint,
            AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.awsEndpoint,
            AWS_ENDPOINT_URL_SSM: aws.awsEndpoint,
            CURL_CA_BUNDLE: '/tmp/test-ca.pem',
          },
          ['/usr/local/sbin/sbc-first-boot'],
        );
      }

      it('writes the addresses and installs the certificate from Secrets Manager', async () => {
        // Prepare
        aws.values.set(setting('SBC_CERT_ID'), certificate);
        aws.values.set(setting('SBC_KEY_ID'), key);
        aws.imdsRequests.length = 0;
        aws.awsRequests.length = 0;

        // Act
        const result = await firstBoot();

        // Assess: the files, their modes and owners
        expect(result.code, result.output).toBe(0);
        expect(
          await readFile(join(root, 'etc/sbc-ami/addresses.env'), 'utf8'),
        ).toBe('SBC_PRIVATE_IP=198.18.0.10\nSBC_PUBLIC_IP=198.18.0.20\n');
        const crt = await stat(join(root, 'etc/kamailio/tls/sbc.crt'));
        const pem = await stat(join(root, 'etc/kamailio/tls/sbc.key'));
        const group = await readFile(join(root, 'etc/group'), 'utf8');
        const kamailioGid = Number(/^kamailio:x:(\d+):/m.exec(group)?.[1]);
        expect([crt.mode & 0o7777, crt.uid, crt.gid]).toEqual([0o644, 0, 0]);
        expect([pem.mode & 0o7777, pem.uid, pem.gid]).toEqual([
          0o640,
          0,
          kamailioGid,
        ]);
        expect(
          await readFile(join(root, 'etc/kamailio/tls/sbc.crt'), 'utf8'),
        ).toBe(certificate.endsWith('\n') ? certificate : `${certificate}\n`);

        // Assess: IMDSv2 (token first, then every GET with it)
        expect(aws.imdsRequests[0]).toMatchObject({
          method: 'PUT',
          path: '/latest/api/token',
        });
        for (const request of aws.imdsRequests.slice(1)) {
          expect(request.method).toBe('GET');
          expect(request.headers['x-aws-ec2-metadata-token']).toBeDefined();
        }

        // Assess: two signed GetSecretValue calls with the role's token
        expect(aws.awsRequests).toHaveLength(2);
        expect(
          aws.awsRequests.map((r) => ({
            target: r.headers['x-amz-target'],
            body: JSON.parse(r.body),
            token: r.headers['x-amz-security-token'],
            signatureValid: r.signatureValid,
          })),
        ).toEqual([
          {
            target: 'secretsmanager.GetSecretValue',
            body: { SecretId: setting('SBC_CERT_ID') },
            token: 'test-session-token',
            signatureValid: true,
          },
          {
            target: 'secretsmanager.GetSecretValue',
            body: { SecretId: setting('SBC_KEY_ID') },
            token: 'test-session-token',
            signatureValid: true,
          },
        ]);
      });

      it('reads SSM and advertises the private address without a public one', async () => {
        // Prepare
        await removeBootOutputs();
        await writeFile(
          join(root, 'etc/sbc-ami/sbc.env'),
          settings
            .replace(/^SBC_CERT_SOURCE=.*$/m, 'SBC_CERT_SOURCE=ssm')
            .replace(/^SBC_CERT_ID=.*$/m, 'SBC_CERT_ID=/sbc/test/cert')
            .replace(/^SBC_KEY_ID=.*$/m, 'SBC_KEY_ID="/sbc/test/key"'),
        );
        aws.values.set('/sbc/test/cert', certificate);
        aws.values.set('/sbc/test/key', key);
        aws.awsRequests.length = 0;
        const noPublic = await startFakeAws(
          { ...instance, publicIp: undefined },
          {
            cert: await readFile(join(pki, 'endpoint.crt'), 'utf8'),
            key: await readFile(join(pki, 'endpoint.key'), 'utf8'),
          },
        );
        noPublic.values.set('/sbc/test/cert', certificate);
        noPublic.values.set('/sbc/test/key', key);

        // Act
        let result: Result;
        try {
          result = await inImage(
            root,
            {
              AWS_EC2_METADATA_SERVICE_ENDPOINT: noPublic.imdsEndpoint,
              AWS_ENDPOINT_URL_SSM: noPublic.awsEndpoint,
              CURL_CA_BUNDLE: '/tmp/test-ca.pem',
            },
            ['/usr/local/sbin/sbc-first-boot'],
          );
        } finally {
          await noPublic.close();
        }

        // Assess
        expect(result.code, result.output).toBe(0);
        expect(
          await readFile(join(root, 'etc/sbc-ami/addresses.env'), 'utf8'),
        ).toBe('SBC_PRIVATE_IP=198.18.0.10\nSBC_PUBLIC_IP=198.18.0.10\n');
        expect(
          noPublic.awsRequests.map((r) => [
            r.headers['x-amz-target'],
            JSON.parse(r.body),
            r.signatureValid,
          ]),
        ).toEqual([
          [
            'AmazonSSM.GetParameter',
            { Name: '/sbc/test/cert', WithDecryption: true },
            true,
          ],
          [
            'AmazonSSM.GetParameter',
            { Name: '/sbc/test/key', WithDecryption: true },
            true,
          ],
        ]);
        await writeFile(join(root, 'etc/sbc-ami/sbc.env'), settings);
      });

      it('keeps the installed certificate when the store cannot be read', async () => {
        // Prepare: a first boot that installed a certificate, then an outage
        await removeBootOutputs();
        aws.values.set(setting('SBC_CERT_ID'), certificate);
        aws.values.set(setting('SBC_KEY_ID'), key);
        expect((await firstBoot()).code).toBe(0);
        aws.values.clear();

        // Act
        const result = await firstBoot();

        // Assess
        expect(result.code, result.output).toBe(0);
        expect(result.output).toContain(
          'WARNING: keeping the certificate already in /etc/kamailio/tls',
        );
        expect((await readdir(join(root, 'etc/kamailio/tls'))).sort()).toEqual([
          'sbc.crt',
          'sbc.key',
        ]);
      });

      it('refuses a key that does not match the certificate and installs nothing', async () => {
        // Prepare
        await removeBootOutputs();
        aws.values.set(setting('SBC_CERT_ID'), certificate);
        aws.values.set(setting('SBC_KEY_ID'), otherKey);

        // Act
        const result = await firstBoot();

        // Assess
        expect(result.code).toBe(1);
        expect(result.output).toContain('does not match the certificate');
        expect(await readdir(join(root, 'etc/kamailio/tls'))).toEqual([]);
      });

      it('fails clearly when the secret does not exist', async () => {
        // Prepare
        await removeBootOutputs();
        aws.values.clear();

        // Act
        const result = await firstBoot();

        // Assess
        expect(result.code).toBe(1);
        expect(result.output).toContain('ResourceNotFoundException');
        expect(result.output).not.toContain(
          instance.credentials.secretAccessKey,
        );
        expect(await readdir(join(root, 'etc/kamailio/tls'))).toEqual([]);
      });
    });

    describe('sbc-cert-check', () => {
      let pki: string;

      beforeAll(async () => {
        pki = await mkdtemp(join(tmpdir(), 'sbc-expiry-'));
      });

      afterAll(async () => {
        await rm(pki, { recursive: true, force: true });
        await rm(join(root, 'etc/kamailio/tls/sbc.crt'), { force: true });
      });

      async function installCertificate(days: number) {
        const result = await sh('openssl', [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          String(days),
          '-subj',
          '/CN=sbc.example.com',
          '-keyout',
          join(pki, `${days}.key`),
          '-out',
          join(pki, `${days}.crt`),
        ]);
        expect(result.code, result.output).toBe(0);
        await copyFile(
          join(pki, `${days}.crt`),
          join(root, 'etc/kamailio/tls/sbc.crt'),
        );
        await chmod(join(root, 'etc/kamailio/tls/sbc.crt'), 0o644);
      }

      it('passes a certificate valid beyond the minimum days', async () => {
        // Prepare
        await installCertificate(90);

        // Act
        const result = await inImage(root, {}, [
          '/usr/local/sbin/sbc-cert-check',
        ]);

        // Assess
        expect(result.code).toBe(0);
        expect(result.output).toMatch(/(89|90) days left, minimum 21/);
      });

      it('warns and fails when the certificate expires within the minimum', async () => {
        // Prepare
        await installCertificate(3);

        // Act
        const result = await inImage(root, {}, [
          '/usr/local/sbin/sbc-cert-check',
        ]);

        // Assess
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          /^WARNING: TLS certificate \/etc\/kamailio\/tls\/sbc\.crt .* in [23] days \(min/m,
        );
      });

      it('warns and fails when the certificate is missing', async () => {
        // Prepare
        await rm(join(root, 'etc/kamailio/tls/sbc.crt'), { force: true });

        // Act
        const result = await inImage(root, {}, [
          '/usr/local/sbin/sbc-cert-check',
        ]);

        // Assess
        expect(result.code).toBe(1);
        expect(result.output).toContain('is missing');
      });
    });

    describe('the validation step', () => {
      it('fails a tampered image and names each mismatch', async () => {
        // Prepare: break five rules of the policy
        await writeFile(
          join(root, 'etc/sysctl.d/99-tamper.conf'),
          'net.ipv4.ip_forward = 1\n',
        );
        await chmod(join(root, 'etc/kamailio/tls'), 0o755);
        const leak = await sh('openssl', [
          'genpkey',
          '-algorithm',
          'EC',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-out',
          join(root, 'root/leak.pem'),
        ]);
        expect(leak.code, leak.output).toBe(0);
        await writeFile(
          join(root, 'etc/ssh/sshd_config.d/10-tamper.conf'),
          'PermitRootLogin yes\n',
        );
        await inImage(root, {}, [
          'systemctl',
          'disable',
          'sbc-cert-check.timer',
        ]);
        await copyFile(
          join(PACKER_DIR, 'scripts/90-validate.sh'),
          join(root, 'tmp/90-validate.sh'),
        );

        // Act
        let result: Result;
        try {
          result = await inImageOffline(root, {}, [
            '/bin/bash',
            '/tmp/90-validate.sh',
          ]);
        } finally {
          await rm(join(root, 'etc/sysctl.d/99-tamper.conf'));
          await chmod(join(root, 'etc/kamailio/tls'), 0o750);
          await rm(join(root, 'root/leak.pem'));
          await rm(join(root, 'etc/ssh/sshd_config.d/10-tamper.conf'));
          await inImage(root, {}, [
            'systemctl',
            'enable',
            'sbc-cert-check.timer',
          ]);
          await rm(join(root, 'tmp/90-validate.sh'));
        }

        // Assess
        expect(result.code, result.output).toBe(1);
        const mismatches = result.output
          .split('\n')
          .filter((line) => line.endsWith('MISMATCH'));
        expect(mismatches).toEqual([
          expect.stringMatching(/^net\.ipv4\.ip_forward\s+0\s+1\s+MISMATCH$/),
          expect.stringMatching(
            /^\/etc\/kamailio\/tls\s+0750 root:kamailio\s+0755 root:kamailio\s+MISMATCH$/,
          ),
          expect.stringMatching(
            /^files holding a PEM private key\s+\/root\/leak\.pem\s+MISMATCH$/,
          ),
          expect.stringMatching(/^sshd permitrootlogin\s+no\s+yes\s+MISMATCH$/),
          expect.stringMatching(
            /^sbc-cert-check\.timer\s+enabled\s+disabled\s+MISMATCH$/,
          ),
        ]);
        expect(result.output).toContain('5 mismatches');
      });
    });
  });
});
