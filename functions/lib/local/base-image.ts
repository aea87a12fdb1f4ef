/**
 * The local base image: the cached debootstrap root filesystem, registered
 * in the local image store so that Prepare resolves and allows a base image
 * exactly as it does Debian's AMI on AWS.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { TAG_RETAIN } from '../constants.ts';
import type { ImageRecord } from '../ports.ts';
import type { LocalImageStore } from './image-store.ts';
import { debootstrapBase } from './rootfs.ts';

/** Owner of local base images, in place of Debian's AWS account. */
export const LOCAL_BASE_OWNER = 'debian';
/** Name pattern of local base images (`debian-12-minbase-YYYYMMDD`). */
export const LOCAL_BASE_NAME_PATTERN = 'debian-12-minbase-*';
/** Names the cached archive a base image stands for. */
export const TAG_BASE_ARCHIVE = 'sbc-ami:base-archive';

/**
 * Makes sure the debootstrap base is cached (debootstrap runs when it is
 * not) and registered. The image id follows the archive, so the same
 * archive is the same image; records of archives no longer in the cache are
 * removed. The base carries the retain tag: retention never deletes it.
 */
export async function registerBaseImage(args: {
  store: LocalImageStore;
  cacheDir: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}): Promise<ImageRecord> {
  const archive = await debootstrapBase(args.cacheDir, args.log, args.signal);
  const name = basename(archive);
  const key = /-([0-9a-f]{16})\.tar$/.exec(name)?.[1];
  if (key === undefined) {
    throw new Error(`unexpected base archive name ${name}`);
  }
  const made = (await stat(archive)).mtime;
  const imageId = `img-base-${key}`;

  for (const image of await args.store.listImages()) {
    const stale =
      image.ownerId === LOCAL_BASE_OWNER &&
      image.tags[TAG_BASE_ARCHIVE] !== undefined &&
      image.tags[TAG_BASE_ARCHIVE] !== name;
    if (stale) {
      await args.store.deregisterImage(image.imageId);
    }
  }

  const record: ImageRecord = {
    imageId,
    name: `debian-12-minbase-${made.toISOString().slice(0, 10).replaceAll('-', '')}`,
    state: 'available',
    createdAt: made.toISOString(),
    architecture: localArchitecture(),
    ownerId: LOCAL_BASE_OWNER,
    public: false,
    tags: { [TAG_BASE_ARCHIVE]: name, [TAG_RETAIN]: 'true' },
    // The archive stays in the cache; the base has no snapshot of its own.
    blockDevices: [],
  };
  const existing = await args.store.describeImage(imageId);
  if (JSON.stringify(existing) !== JSON.stringify(record)) {
    await args.store.putImage(record);
  }
  return record;
}

/** EC2's name for this machine's architecture, which debootstrap builds. */
export function localArchitecture(): string {
  switch (process.arch) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'arm64';
    default:
      return process.arch;
  }
}
