/**
 * The local build: a Debian 12 root filesystem made by debootstrap (cached
 * between runs), provisioned in a chroot by the same `packer/scripts` that
 * the EC2 build runs, and packed as a tar file with its SHA-256.
 *
 * Every mount this module makes is undone in a `finally`, on success, on a
 * failing script and on abort; `cleanupRootfs` removes what a killed process
 * could not.
 */
import { type SpawnOptions, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  BuildFailedError,
  ConfigurationError,
  PipelineError,
} from '../errors.ts';

export interface RootfsBuildOptions {
  /** Scratch folder of this build; the root filesystem is made inside. */
  workDir: string;
  /** Survives between runs: the debootstrap base and downloaded packages. */
  cacheDir: string;
  /** The configuration rendered from the SIP profile, a tree under `etc/`. */
  renderedTree: string;
  runId: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RootfsBuild {
  rootfsDir: string;
  /** The packed root filesystem (tar, numeric owners). */
  imageFile: string;
  /** SHA-256 (hex) of `imageFile`. */
  digest: string;
  /** Milliseconds per step: base, unpack, stage, each script, pack. */
  timings: Record<string, number>;
}

/** The project's Packer folder: template, scripts and static files. */
export const PACKER_DIR = resolve(import.meta.dirname, '../../../packer');
const SCRIPTS_DIR = join(PACKER_DIR, 'scripts');
const FILES_DIR = join(PACKER_DIR, 'files');

/** Where the scripts find the staged trees, as on the EC2 builder. */
const STAGING_IN_ROOT = '/tmp/sbc-ami';
const SUITE = 'bookworm';
const VARIANT = 'minbase';
/** Bumped when the content of the cached base changes for the same mirrors. */
const BASE_FORMAT = 2;
/** The one script that needs the network: it downloads packages. */
const NETWORK_STEP = /packages/;
const APT_ARCHIVES = 'var/cache/apt/archives';
/** dpkg-query format of an installed package's file name in apt's cache. */
const DPKG_DEB_NAME =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's ${Field} syntax
  '${Package}_${Version}_${Architecture}.deb\\n';
const CHROOT_PATH =
  '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ------------------------------------------------------------ debootstrap

/** The Debian mirrors this machine's apt uses. */
export interface DebianMirrors {
  readonly debian: string;
  readonly security: string;
}

/**
 * Reads the machine's apt sources (one-line `.list` and deb822 `.sources`)
 * for the `bookworm` and `bookworm-security` mirrors.
 */
export async function readDebianMirrors(
  aptDir = '/etc/apt',
): Promise<DebianMirrors> {
  const files = [join(aptDir, 'sources.list')];
  const listDir = join(aptDir, 'sources.list.d');
  for (const name of await readdirOrEmpty(listDir)) {
    if (name.endsWith('.list') || name.endsWith('.sources')) {
      files.push(join(listDir, name));
    }
  }

  const suites = new Map<string, string>();
  for (const file of files) {
    const text = await readFileOrEmpty(file);
    const entries = file.endsWith('.sources')
      ? parseDeb822Sources(text)
      : parseOneLineSources(text);
    for (const { uri, suite } of entries) {
      if (!suites.has(suite)) {
        suites.set(suite, uri.replace(/\/+$/, ''));
      }
    }
  }

  const debian = suites.get(SUITE);
  if (debian === undefined) {
    throw new ConfigurationError(
      `no apt source for ${SUITE} in ${files.join(', ')}: ` +
        'debootstrap needs a Debian 12 mirror',
    );
  }
  const security =
    suites.get(`${SUITE}-security`) ??
    debian.replace(/\/debian$/, '/debian-security');
  return { debian, security };
}

interface SourceEntry {
  readonly uri: string;
  readonly suite: string;
}

function parseOneLineSources(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const words = line.replace(/\[[^\]]*\]/, '').split(/\s+/);
    if (words[0] === 'deb' && words[1] !== undefined && words[2]) {
      entries.push({ uri: words[1], suite: words[2] });
    }
  }
  return entries;
}

function parseDeb822Sources(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match?.[1] !== undefined && match[2] !== undefined) {
        fields.set(match[1].toLowerCase(), match[2].trim());
      }
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb') || fields.get('enabled') === 'no') {
      continue;
    }
    const uris = (fields.get('uris') ?? '').split(/\s+/).filter(Boolean);
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of uris) {
      for (const suite of suites) {
        entries.push({ uri, suite });
      }
    }
  }
  return entries;
}

/** The apt sources written into the base: release, updates and security. */
function baseSources(mirrors: DebianMirrors): string {
  return [
    'Types: deb',
    `URIs: ${mirrors.debian}`,
    `Suites: ${SUITE} ${SUITE}-updates`,
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    `URIs: ${mirrors.security}`,
    `Suites: ${SUITE}-security`,
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
  ].join('\n');
}

/**
 * A `debootstrap --variant=minbase bookworm` root filesystem from this
 * machine's Debian mirror, packed as a tar file in `cacheDir` and reused
 * while the mirrors stay the same. Resolves to the tar file's path.
 */
export async function debootstrapBase(
  cacheDir: string,
  log: (line: string) => void = () => {},
  signal?: AbortSignal,
): Promise<string> {
  const mirrors = await readDebianMirrors();
  const key = createHash('sha256')
    .update(JSON.stringify({ SUITE, VARIANT, mirrors, BASE_FORMAT }))
    .digest('hex')
    .slice(0, 16);
  const baseDir = join(resolve(cacheDir), 'debootstrap');
  const tarball = join(baseDir, `${SUITE}-${VARIANT}-${key}.tar`);
  if (await exists(tarball)) {
    log(`base: cached ${tarball}`);
    return tarball;
  }

  // A private scratch folder and an atomic rename: two builds that miss
  // the cache at once both succeed, the last rename wins.
  const scratch = join(baseDir, `.tmp-${randomUUID()}`);
  const root = join(scratch, 'root');
  await mkdir(root, { recursive: true });
  try {
    log(`base: debootstrap --variant=${VARIANT} ${SUITE} ${mirrors.debian}`);
    await run(
      'debootstrap',
      [`--variant=${VARIANT}`, SUITE, root, mirrors.debian],
      { log: prefixed(log, 'debootstrap'), signal },
    );
    // The packages debootstrap downloaded belong in the package cache,
    // not in every unpacked copy of the base.
    await keepDebs(
      join(root, APT_ARCHIVES),
      join(resolve(cacheDir), 'apt-archives'),
    );
    await removeDebs(join(root, APT_ARCHIVES));
    await rm(join(root, 'etc/apt/sources.list'), { force: true });
    await writeFile(
      join(root, 'etc/apt/sources.list.d/debian.sources'),
      baseSources(mirrors),
    );
    await run(
      'tar',
      ['--numeric-owner', '-C', root, '-cf', `${tarball}.tmp`, '.'],
      {
        signal,
      },
    );
    await rename(`${tarball}.tmp`, tarball);
    log(`base: cached as ${tarball}`);
    return tarball;
  } finally {
    await rm(`${tarball}.tmp`, { force: true });
    await cleanupRootfs(scratch);
  }
}

// ------------------------------------------------------------------ build

/**
 * Unpacks the cached base into `workDir/rootfs`, stages the rendered tree
 * and the static files where the Packer build uploads them, runs each
 * `packer/scripts/NN-*.sh` in order in a chroot, then packs the result.
 *
 * Only the package step has the network; the others, validation included,
 * run in a private network namespace with loopback up. A policy-rc.d
 * refuses every service start, and nothing mounted outlives the call.
 */
export async function buildRootfs(
  options: RootfsBuildOptions,
): Promise<RootfsBuild> {
  const log = options.log ?? (() => {});
  const { signal } = options;
  const workDir = resolve(options.workDir);
  const rootfsDir = join(workDir, 'rootfs');
  const imageFile = join(workDir, 'rootfs.tar');
  const timings: Record<string, number> = {};
  // Each step's time, and its failure as a BuildFailedError naming it.
  const timed = async <T>(step: string, work: () => Promise<T>) => {
    const started = performance.now();
    try {
      return await work();
    } catch (error) {
      if (signal?.aborted || error instanceof PipelineError) {
        throw error;
      }
      throw new BuildFailedError(`local build step ${step} failed`, {
        cause: error,
        data: { step, workDir },
      });
    } finally {
      timings[step] = Math.round(performance.now() - started);
    }
  };

  signal?.throwIfAborted();
  if (await exists(rootfsDir)) {
    throw new ConfigurationError(
      `${rootfsDir} already exists: run cleanupRootfs(${workDir}) first`,
    );
  }
  if (!(await isDirectory(options.renderedTree))) {
    throw new ConfigurationError(
      `renderedTree ${options.renderedTree} is not a directory`,
    );
  }
  const scripts = await provisioningScripts();

  const base = await timed('base', () =>
    debootstrapBase(options.cacheDir, log, signal),
  );
  await mkdir(rootfsDir, { recursive: true });
  await timed('unpack', () =>
    run('tar', ['--numeric-owner', '-xpf', base, '-C', rootfsDir], { signal }),
  );
  await timed('stage', () => stage(rootfsDir, options.renderedTree, signal));

  log(`build ${options.runId}: ${scripts.length} provisioning steps`);
  try {
    await mountProc(rootfsDir, signal);
    for (const script of scripts) {
      await timed(script, () =>
        runScript(rootfsDir, script, options.cacheDir, log, signal),
      );
      log(`step ${script} done in ${seconds(timings[script])} s`);
    }
  } finally {
    await unmountAll(rootfsDir, log);
  }
  await rm(join(rootfsDir, 'usr/sbin/policy-rc.d'), { force: true });

  log('packing the root filesystem (tar) and hashing it (sha256)');
  await timed('pack', () =>
    run(
      'tar',
      ['--numeric-owner', '--xattrs', '-C', rootfsDir, '-cf', imageFile, '.'],
      { signal },
    ),
  );
  const digest = await sha256File(imageFile);
  log(`build ${options.runId}: packed ${imageFile} sha256 ${digest}`);
  return { rootfsDir, imageFile, digest, timings };
}

/**
 * Unmounts whatever is still mounted under `workDir` (deepest first) and
 * removes it, never crossing into a mount it could not undo.
 */
export async function cleanupRootfs(workDir: string): Promise<void> {
  const dir = resolve(workDir);
  await unmountAll(dir);
  const left = await mountsUnder(dir);
  if (left.length > 0) {
    throw new Error(
      `cannot remove ${dir}: still mounted ${left.join(', ')}; ` +
        'unmount by hand (umount -l) and remove it',
    );
  }
  await run('rm', ['-rf', '--one-file-system', dir]);
}

/** The provisioning scripts in the order both builds run them. */
export async function provisioningScripts(): Promise<string[]> {
  const names = (await readdir(SCRIPTS_DIR)).filter((name) =>
    /^\d\d-[a-z0-9-]+\.sh$/.test(name),
  );
  return names.sort();
}

/**
 * SHA-256 of the Packer template and provisioning files, as the CodeBuild
 * buildspec computes it: `sha256sum` lines of every file under `packer/`
 * but the buildspec, sorted by path, hashed again.
 */
export async function templateDigest(packerDir = PACKER_DIR): Promise<string> {
  const root = dirname(resolve(packerDir));
  const files = (await listFiles(resolve(packerDir)))
    .filter((file) => basename(file) !== 'buildspec.yml')
    .map((file) => relative(root, file))
    .sort();
  const lines: string[] = [];
  for (const file of files) {
    lines.push(`${await sha256File(join(root, file))}  ${file}\n`);
  }
  return createHash('sha256').update(lines.join('')).digest('hex');
}

// ------------------------------------------------------------- internals

async function stage(
  rootfsDir: string,
  renderedTree: string,
  signal?: AbortSignal,
): Promise<void> {
  const staging = join(rootfsDir, STAGING_IN_ROOT);
  await mkdir(staging, { recursive: true, mode: 0o700 });
  // cp -a keeps the rendered modes, which are final.
  await run(
    'cp',
    ['-a', `${resolve(renderedTree)}/.`, join(staging, 'rendered')],
    {
      signal,
    },
  );
  await run('cp', ['-a', `${FILES_DIR}/.`, join(staging, 'files')], { signal });
  const policy = join(rootfsDir, 'usr/sbin/policy-rc.d');
  await writeFile(
    policy,
    '#!/bin/sh\n# Local image build: no service starts.\nexit 101\n',
  );
  await chmod(policy, 0o755);
}

async function mountProc(rootfsDir: string, signal?: AbortSignal) {
  await run('mount', ['-t', 'proc', 'proc', join(rootfsDir, 'proc')], {
    signal,
  });
}

async function runScript(
  rootfsDir: string,
  script: string,
  cacheDir: string,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const inRoot = `/tmp/${script}`;
  const networked = NETWORK_STEP.test(script);
  const debs = join(resolve(cacheDir), 'apt-archives');
  await copyFile(join(SCRIPTS_DIR, script), join(rootfsDir, inRoot));

  log(`step ${script}${networked ? '' : ' (no network)'}`);
  if (networked) {
    await shareDebs(debs, join(rootfsDir, APT_ARCHIVES));
  }
  const chroot = [
    'chroot',
    rootfsDir,
    '/usr/bin/env',
    '-i',
    `PATH=${CHROOT_PATH}`,
    'HOME=/root',
    'LANG=C.UTF-8',
    'DEBIAN_FRONTEND=noninteractive',
    `SBC_STAGING_DIR=${STAGING_IN_ROOT}`,
    '/bin/bash',
    inRoot,
  ];
  try {
    if (networked) {
      await run(chroot[0] as string, chroot.slice(1), {
        log: prefixed(log, script),
        signal,
      });
    } else {
      // A private network namespace: `nft -c` and `kamailio -c` see only
      // loopback, and no step but the package one reaches the network.
      await run(
        'unshare',
        [
          '--net',
          '--',
          'sh',
          '-c',
          'ip link set lo up && exec "$@"',
          'sh',
          ...chroot,
        ],
        { log: prefixed(log, script), signal },
      );
    }
  } catch (error) {
    if (signal?.aborted) {
      throw abortReason(signal);
    }
    throw new BuildFailedError(`provisioning step ${script} failed`, {
      cause: error,
      data: { step: script, rootfsDir },
    });
  } finally {
    await rm(join(rootfsDir, inRoot), { force: true });
    if (networked) {
      await keepDebs(join(rootfsDir, APT_ARCHIVES), debs);
    }
  }
  if (networked) {
    await pruneDebs(rootfsDir, debs);
  }
}

/**
 * Drops cached packages that are not installed in the new root filesystem,
 * so superseded versions do not pile up from one weekly build to the next.
 */
async function pruneDebs(rootfsDir: string, cache: string): Promise<void> {
  const installed = new Set<string>();
  await run('chroot', [rootfsDir, 'dpkg-query', '-W', '-f', DPKG_DEB_NAME], {
    log: (line) => installed.add(line.trim().replaceAll(':', '%3a')),
  });
  for (const name of await readdirOrEmpty(cache)) {
    if (name.endsWith('.deb') && !installed.has(name)) {
      await rm(join(cache, name), { force: true });
    }
  }
}

async function removeDebs(archives: string): Promise<void> {
  for (const name of await readdirOrEmpty(archives)) {
    if (name.endsWith('.deb')) {
      await rm(join(archives, name), { force: true });
    }
  }
}

/** Offers the cached packages to apt in the chroot (hard links when possible). */
async function shareDebs(cache: string, archives: string): Promise<void> {
  await mkdir(archives, { recursive: true });
  for (const name of await readdirOrEmpty(cache)) {
    if (name.endsWith('.deb')) {
      await linkOrCopy(join(cache, name), join(archives, name));
    }
  }
}

/** Keeps the packages apt downloaded, for the next build. */
async function keepDebs(archives: string, cache: string): Promise<void> {
  await mkdir(cache, { recursive: true });
  const cached = new Set(await readdirOrEmpty(cache));
  for (const name of await readdirOrEmpty(archives)) {
    if (name.endsWith('.deb') && !cached.has(name)) {
      const temporary = join(cache, `.${randomUUID()}.tmp`);
      await linkOrCopy(join(archives, name), temporary);
      await rename(temporary, join(cache, name));
    }
  }
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      return;
    }
    if (code !== 'EXDEV' && code !== 'EPERM') {
      throw error;
    }
    await copyFile(from, to);
  }
}

/** Mount points at or under `dir`, from /proc/self/mounts. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((field): field is string => field !== undefined)
    .map((field) =>
      field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
        String.fromCharCode(Number.parseInt(octal, 8)),
      ),
    )
    .filter((mount) => mount === root || mount.startsWith(`${root}/`));
}

/**
 * Unmounts everything under `dir`, deepest first. A mount kept busy by a
 * process left in the chroot gets that process ended (by pid), then a
 * lazy unmount. Never throws: what stays mounted is logged.
 */
async function unmountAll(
  dir: string,
  log: (line: string) => void = () => {},
): Promise<void> {
  const mounts = (await mountsUnder(dir)).sort((a, b) => b.length - a.length);
  if (mounts.length === 0) {
    return;
  }
  await endProcessesIn(dir, log);
  for (const mount of mounts) {
    try {
      await run('umount', [mount]);
    } catch {
      try {
        await run('umount', ['--lazy', mount]);
        log(`unmount: ${mount} was busy, detached lazily`);
      } catch (error) {
        // Gone with its parent, or unmounted by another cleanup: done.
        if ((await mountsUnder(mount)).includes(mount)) {
          log(`unmount: cannot unmount ${mount}: ${(error as Error).message}`);
        }
      }
    }
  }
}

/** Ends processes whose root directory is inside `dir` (left by a chroot). */
async function endProcessesIn(dir: string, log: (line: string) => void) {
  const root = resolve(dir);
  const pids: number[] = [];
  for (const entry of await readdirOrEmpty('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const processRoot = await readlink(`/proc/${entry}/root`);
      if (processRoot === root || processRoot.startsWith(`${root}/`)) {
        pids.push(Number(entry));
      }
    } catch {
      // the process ended meanwhile, or is not ours to inspect
    }
  }
  for (const pid of pids) {
    log(`unmount: ending process ${pid} left in ${root}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (pids.length > 0) {
    await new Promise((done) => setTimeout(done, 200));
  }
}

// -------------------------------------------------------------- processes

interface RunOptions {
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** Lines kept from a failing command's output, for its error message. */
const TAIL_LINES = 30;

/**
 * Runs a command in its own process group, streaming its output lines to
 * `log`. On abort the whole group is ended (SIGTERM, then SIGKILL) and the
 * call rejects only once the command has exited.
 */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<void> {
  const { log, signal } = options;
  if (signal?.aborted) {
    return Promise.reject(abortReason(signal));
  }
  return new Promise((resolvePromise, rejectPromise) => {
    const spawnOptions: SpawnOptions = {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    };
    const child = spawn(command, args, spawnOptions);
    const tail: string[] = [];
    let killTimer: NodeJS.Timeout | undefined;

    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) {
        tail.shift();
      }
      log?.(line);
    };
    splitLines(child.stdout, onLine);
    splitLines(child.stderr, onLine);

    const onAbort = () => {
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 5000);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.once('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      rejectPromise(
        new Error(`cannot run ${command}: ${error.message}`, { cause: error }),
      );
    });
    child.once('close', (code, signalName) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      if (signal?.aborted) {
        rejectPromise(abortReason(signal));
      } else if (code === 0) {
        resolvePromise();
      } else {
        const status = code === null ? `signal ${signalName}` : `exit ${code}`;
        rejectPromise(
          new Error(
            `${command} ${args.join(' ')} failed (${status})\n${tail.join('\n')}`,
          ),
        );
      }
    });
  });
}

function signalGroup(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) {
    return;
  }
  try {
    process.kill(-pid, name);
  } catch {
    // the group has exited
  }
}

function splitLines(
  stream: NodeJS.ReadableStream | null,
  onLine: (line: string) => void,
): void {
  if (stream === null) {
    return;
  }
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      onLine(line);
    }
  });
  stream.on('end', () => {
    if (rest.length > 0) {
      onLine(rest);
    }
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException('the build was aborted', 'AbortError');
}

function prefixed(
  log: (line: string) => void,
  prefix: string,
): (line: string) => void {
  return (line) => log(`[${prefix}] ${line}`);
}

// ------------------------------------------------------------------ files

function seconds(ms: number | undefined): string {
  return ((ms ?? 0) / 1000).toFixed(1);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return [];
    }
    throw error;
  }
}

async function readFileOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return '';
    }
    throw error;
  }
}
