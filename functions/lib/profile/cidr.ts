import { BlockList, isIP } from 'node:net';

/** An address block parsed from `ADDRESS` or `ADDRESS/PREFIX`. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

const DIGITS = /^[0-9]{1,3}$/;

/**
 * Parses a CIDR or a bare address (a single host). Address syntax is left
 * to node:net, which is what the kernel-facing tools will agree with; a zone
 * id (`fe80::1%eth0`) means nothing outside this host and is refused.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if ((family !== 4 && family !== 6) || address.includes('%')) {
    return undefined;
  }

  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!DIGITS.test(prefixText)) {
      return undefined;
    }
    prefix = Number(prefixText);
  }
  if (prefix > max) {
    return undefined;
  }

  // BlockList applies the same rules the socket layer does: a second opinion
  // on the address and prefix before they reach nft and Kamailio.
  try {
    new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return undefined;
  }
  return { family, address, prefix };
}

export function isCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** `ADDRESS/PREFIX`, the form nft and the address list are given. */
export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

function blockOf(cidr: Cidr): BlockList {
  const list = new BlockList();
  list.addSubnet(
    cidr.address,
    cidr.prefix,
    cidr.family === 4 ? 'ipv4' : 'ipv6',
  );
  return list;
}

/**
 * True when two blocks share an address. CIDR blocks are nested or
 * disjoint, so they overlap exactly when one holds the other's address.
 */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) {
    return false;
  }
  const type = a.family === 4 ? 'ipv4' : 'ipv6';
  return blockOf(a).check(b.address, type) || blockOf(b).check(a.address, type);
}

/**
 * The bytes of an address node:net accepted (4 or 16). IPv6 goes through
 * the URL parser first, which writes it as hex groups around one `::`,
 * embedded IPv4 included.
 */
function addressBytes(cidr: Cidr): number[] {
  if (cidr.family === 4) {
    return cidr.address.split('.').map(Number);
  }
  const canonical = new URL(`http://[${cidr.address}]`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const groupsOf = (text: string) =>
    text === ''
      ? []
      : text.split(':').map((group) => Number.parseInt(group, 16));
  const front = groupsOf(head);
  const back = tail === undefined ? [] : groupsOf(tail);
  const zeros = new Array<number>(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back].flatMap((group) => [
    group >> 8,
    group & 0xff,
  ]);
}

/** The address of some bytes, IPv6 in its compressed lower-case form. */
function bytesAddress(family: 4 | 6, bytes: readonly number[]): string {
  if (family === 4) {
    return bytes.join('.');
  }
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) {
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** The block with every bit past the prefix cleared: its network. */
export function networkOf(cidr: Cidr): Cidr {
  const bytes = addressBytes(cidr).map((byte, index) => {
    const kept = Math.min(Math.max(cidr.prefix - index * 8, 0), 8);
    return byte & ((0xff << (8 - kept)) & 0xff);
  });
  return { ...cidr, address: bytesAddress(cidr.family, bytes) };
}

/**
 * True when the address has bits set past the prefix (`10.0.0.1/16`):
 * it is not clear whether the host or its whole network was meant.
 */
export function hasHostBits(cidr: Cidr): boolean {
  const network = addressBytes(networkOf(cidr));
  return addressBytes(cidr).some((byte, index) => byte !== network[index]);
}
