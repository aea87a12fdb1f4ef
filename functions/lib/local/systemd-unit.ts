/**
 * Reads how systemd would start a service of an image, without systemd:
 * the unit file, its drop-ins, the environment they set and the commands
 * they run. The local test host starts Kamailio and rtpengine from these,
 * so the image's own drop-ins (addresses, flags) are what runs.
 *
 * Covers what the image's units use: `Environment=`, `EnvironmentFile=`
 * (optional `-`, globs), `ExecStartPre=`/`ExecStart=` (an empty value
 * resets, `-`/`+`/`@`/`!`/`:` prefixes), `$VAR` and `${VAR}` expansion,
 * `User=`, `Group=`, `RuntimeDirectory=`, `RuntimeDirectoryMode=`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Unit folders, lowest precedence first (a later file replaces a same-named one). */
const UNIT_DIRS = [
  'lib/systemd/system',
  'usr/lib/systemd/system',
  'etc/systemd/system',
];

export interface ExecCommand {
  /** The program and its arguments, variables expanded. */
  readonly argv: string[];
  /** `-`: a failure of this command is ignored. */
  readonly ignoreFailure: boolean;
  /** `+` or `!`: runs with full privileges, not as `User=`. */
  readonly privileged: boolean;
}

export interface ServiceUnit {
  readonly name: string;
  /** The files read, unit first, then drop-ins in order. */
  readonly files: string[];
  readonly user?: string;
  readonly group?: string;
  /** `Environment=`, then `EnvironmentFile=` (which wins), in order. */
  readonly environment: Record<string, string>;
  readonly execStartPre: ExecCommand[];
  readonly execStart: ExecCommand[];
  /** Under /run, made before the service starts. */
  readonly runtimeDirectories: string[];
  readonly runtimeDirectoryMode: number;
}

/** Reads `name` (e.g. `kamailio.service`) from the image at `root`. */
export async function readServiceUnit(
  root: string,
  name: string,
): Promise<ServiceUnit> {
  let unitFile: string | undefined;
  const dropIns = new Map<string, string>();
  for (const dir of UNIT_DIRS) {
    const candidate = join(root, dir, name);
    if ((await readOrUndefined(candidate)) !== undefined) {
      unitFile = candidate;
    }
    for (const entry of await listOrEmpty(join(root, dir, `${name}.d`))) {
      if (entry.endsWith('.conf')) {
        dropIns.set(entry, join(root, dir, `${name}.d`, entry));
      }
    }
  }
  if (unitFile === undefined) {
    throw new Error(
      `the image has no unit ${name} (looked in ${UNIT_DIRS.join(', ')})`,
    );
  }
  const files = [
    unitFile,
    ...[...dropIns.keys()].sort().map((key) => dropIns.get(key) as string),
  ];

  const assignments: Array<[string, string]> = [];
  for (const file of files) {
    assignments.push(...serviceAssignments(await readFile(file, 'utf8')));
  }
  return interpret(root, name, files, assignments);
}

async function interpret(
  root: string,
  name: string,
  files: string[],
  assignments: Array<[string, string]>,
): Promise<ServiceUnit> {
  const fromEnvironment: Record<string, string> = {};
  const environmentFiles: string[] = [];
  const pre: string[] = [];
  const start: string[] = [];
  let user: string | undefined;
  let group: string | undefined;
  let runtimeDirectories: string[] = [];
  let runtimeDirectoryMode = 0o755;

  for (const [key, value] of assignments) {
    switch (key) {
      case 'Environment':
        if (value === '') {
          for (const k of Object.keys(fromEnvironment)) {
            delete fromEnvironment[k];
          }
        }
        for (const word of splitWords(value)) {
          const eq = word.indexOf('=');
          if (eq > 0) {
            fromEnvironment[word.slice(0, eq)] = word.slice(eq + 1);
          }
        }
        break;
      case 'EnvironmentFile':
        if (value === '') {
          environmentFiles.length = 0;
        } else {
          environmentFiles.push(value);
        }
        break;
      case 'ExecStartPre':
        resetOrPush(pre, value);
        break;
      case 'ExecStart':
        resetOrPush(start, value);
        break;
      case 'User':
        user = value || undefined;
        break;
      case 'Group':
        group = value || undefined;
        break;
      case 'RuntimeDirectory':
        runtimeDirectories =
          value === '' ? [] : [...runtimeDirectories, ...splitWords(value)];
        break;
      case 'RuntimeDirectoryMode':
        runtimeDirectoryMode = Number.parseInt(value, 8);
        break;
      default:
        break;
    }
  }

  const environment = { ...fromEnvironment };
  for (const spec of environmentFiles) {
    const optional = spec.startsWith('-');
    const path = optional ? spec.slice(1) : spec;
    const matches = await expandGlob(root, path);
    if (matches.length === 0 && !optional) {
      throw new Error(
        `${name}: EnvironmentFile ${path} is missing in the image`,
      );
    }
    for (const file of matches) {
      Object.assign(
        environment,
        parseEnvironmentFile(await readFile(file, 'utf8')),
      );
    }
  }

  const command = (line: string): ExecCommand => {
    const prefix = /^[-+@!:]*/.exec(line)?.[0] ?? '';
    const words = expandWords(
      splitWords(line.slice(prefix.length)),
      environment,
    );
    return {
      argv: words,
      ignoreFailure: prefix.includes('-'),
      privileged: prefix.includes('+') || prefix.includes('!'),
    };
  };
  return {
    name,
    files,
    user,
    group,
    environment,
    execStartPre: pre.map(command),
    execStart: start.map(command),
    runtimeDirectories,
    runtimeDirectoryMode,
  };
}

function resetOrPush(list: string[], value: string): void {
  if (value === '') {
    list.length = 0;
  } else {
    list.push(value);
  }
}

/** `Key=value` lines of the `[Service]` section, continuation lines joined. */
export function serviceAssignments(text: string): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  let section = '';
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) {
      continue;
    }
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (section === 'Service' && eq > 0) {
      result.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
    }
  }
  return result;
}

/** `KEY=value` lines; quotes around a value are removed, comments skipped. */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) {
      continue;
    }
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) {
      continue;
    }
    const value = match[2].trim();
    const quoted = /^"(.*)"$|^'(.*)'$/.exec(value);
    env[match[1]] = quoted === null ? value : (quoted[1] ?? quoted[2] ?? '');
  }
  return env;
}

/** Splits on whitespace, honouring single and double quotes. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let current = '';
  let quote: string | undefined;
  let inWord = false;
  for (const char of text) {
    if (quote !== undefined) {
      if (char === quote) {
        quote = undefined;
      } else {
        current += char;
      }
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) {
        words.push(current);
        current = '';
        inWord = false;
      }
    } else {
      current += char;
      inWord = true;
    }
  }
  if (inWord) {
    words.push(current);
  }
  return words;
}

/**
 * systemd's expansion: `${VAR}` in place, and a word that is exactly `$VAR`
 * split on whitespace into several words. Unset variables are empty.
 */
export function expandWords(
  words: readonly string[],
  env: Readonly<Record<string, string>>,
): string[] {
  const expanded: string[] = [];
  for (const word of words) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole?.[1] !== undefined) {
      expanded.push(...(env[whole[1]] ?? '').split(/\s+/).filter(Boolean));
      continue;
    }
    expanded.push(
      word.replace(
        /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
        (_, key: string) => env[key] ?? '',
      ),
    );
  }
  return expanded;
}

/** The files of the image matching `path` (a `*` in the last part only). */
async function expandGlob(root: string, path: string): Promise<string[]> {
  const name = basename(path);
  if (!name.includes('*')) {
    const file = join(root, path);
    return (await readOrUndefined(file)) === undefined ? [] : [file];
  }
  const pattern = new RegExp(
    `^${name.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`,
  );
  const dir = join(root, dirname(path));
  return (await listOrEmpty(dir))
    .filter((entry) => pattern.test(entry))
    .sort()
    .map((entry) => join(dir, entry));
}

async function readOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function listOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
