import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A system command and the Debian package that provides it. */
export interface SystemTool {
  readonly command: string;
  readonly debianPackage: string;
}

/** The system commands the project calls, with their Debian packages. */
export const TOOLS = {
  kamailio: { command: 'kamailio', debianPackage: 'kamailio' },
  sipsak: { command: 'sipsak', debianPackage: 'sipsak' },
  nft: { command: 'nft', debianPackage: 'nftables' },
  ip: { command: 'ip', debianPackage: 'iproute2' },
  debootstrap: { command: 'debootstrap', debianPackage: 'debootstrap' },
  packer: { command: 'packer', debianPackage: 'packer' },
  shellcheck: { command: 'shellcheck', debianPackage: 'shellcheck' },
  openssl: { command: 'openssl', debianPackage: 'openssl' },
  chroot: { command: 'chroot', debianPackage: 'coreutils' },
  mount: { command: 'mount', debianPackage: 'mount' },
  tar: { command: 'tar', debianPackage: 'tar' },
  rtpengine: { command: 'rtpengine', debianPackage: 'rtpengine-daemon' },
} as const satisfies Record<string, SystemTool>;

/** Where a command is on PATH (sbin included), or undefined. */
export function findCommand(command: string): string | undefined {
  const path = process.env.PATH ?? '';
  const dirs = [
    ...path.split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ];
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory: try the next one
    }
  }
  return undefined;
}

/** True when the process runs as root. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * What is missing to run something that needs these tools (and root, when
 * asked): one line per item, naming the Debian package to install.
 */
export function missingRequirements(needs: {
  root?: boolean;
  tools?: readonly SystemTool[];
}): string[] {
  const missing: string[] = [];
  if (needs.root === true && !isRoot()) {
    missing.push('root (chroot, network namespaces and nftables need it)');
  }
  for (const tool of needs.tools ?? []) {
    if (findCommand(tool.command) === undefined) {
      missing.push(`${tool.command} (apt-get install ${tool.debianPackage})`);
    }
  }
  return missing;
}
