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
