import type { Tag } from '@aws-sdk/client-ec2';
import type { Tags } from '../ports.ts';

/** EC2's tag list as a plain map; untitled entries are dropped. */
export function tagMap(tags: readonly Tag[] | undefined): Tags {
  const map: Tags = {};
  for (const tag of tags ?? []) {
    if (tag.Key !== undefined) {
      map[tag.Key] = tag.Value ?? '';
    }
  }
  return map;
}

/** A plain map as EC2's tag list. */
export function tagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
