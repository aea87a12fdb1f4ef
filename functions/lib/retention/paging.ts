import { PaginationLoopError } from './errors.ts';

/** One page of a listing: its items and the token of the next page. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly next?: string;
  /** The caller has seen enough: stop even though a next page exists. */
  readonly done?: boolean;
}

/**
 * Follows every page of a listing. An empty page with a token is normal
 * (EC2 filters server-side after paging) and is followed; a token seen
 * before aborts with `PaginationLoopError` instead of looping.
 */
export async function collectPages<T>(
  listing: string,
  fetch: (token: string | undefined) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await fetch(token);
    pages += 1;
    for (const item of page.items) {
      items.push(item);
    }
    token = page.next === '' || page.done === true ? undefined : page.next;
    if (token !== undefined) {
      if (seen.has(token)) {
        throw new PaginationLoopError(
          `${listing} returned page token ${abbreviate(token)} twice ` +
            `(after ${pages} pages): the listing was stopped`,
          { data: { listing, pages } },
        );
      }
      seen.add(token);
    }
  } while (token !== undefined);
  return items;
}

/** Counts the API calls an adapter sends, by command name. */
export class ApiCallCounter {
  readonly counts: Record<string, number> = {};

  add(command: string): void {
    this.counts[command] = (this.counts[command] ?? 0) + 1;
  }

  snapshot(): Record<string, number> {
    return { ...this.counts };
  }
}

function abbreviate(token: string): string {
  return token.length > 16 ? `${token.slice(0, 16)}...` : token;
}
