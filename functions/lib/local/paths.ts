import { join, resolve } from 'node:path';

/**
 * Where local mode keeps its state. `SBC_AMI_HOME` overrides the default,
 * `.local/` under the project root.
 */
export interface LocalPaths {
  readonly home: string;
  /** One folder per image: `image.json` (an `ImageRecord`). */
  readonly images: string;
  /** One folder per snapshot: `snapshot.json` and the packed root filesystem. */
  readonly snapshots: string;
  /** Signed attestations, one file per image. */
  readonly attestations: string;
  /** The local signing key (P-256, PEM) and its public half. */
  readonly keys: string;
  /** The local stand-in for the SSM parameter and launch template. */
  readonly registry: string;
  /** Cached downloads: the debootstrap base root filesystem. */
  readonly cache: string;
  /** Scratch space of runs in progress, one folder per run id. */
  readonly work: string;
}

export function localPaths(
  home: string = process.env.SBC_AMI_HOME ?? defaultHome(),
): LocalPaths {
  const root = resolve(home);
  return {
    home: root,
    images: join(root, 'images'),
    snapshots: join(root, 'snapshots'),
    attestations: join(root, 'attestations'),
    keys: join(root, 'keys'),
    registry: join(root, 'registry.json'),
    cache: join(root, 'cache'),
    work: join(root, 'work'),
  };
}

function defaultHome(): string {
  return resolve(import.meta.dirname, '..', '..', '..', '.local');
}
