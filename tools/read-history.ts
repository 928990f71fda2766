/**
 * Reads the whole history from a running server, a page at a time: `GET /api/history` alone sends
 * only the newest 200 entries. Used by `npm run load` (tools/load.ts) to check every result.
 */
import type { HistoryEntry } from '../server/protocol/history.ts';

/** Every history entry, oldest first, read in pages of `pageSize` (`?offset=&limit=`). */
export async function readAllHistory(url: string, init: RequestInit = {}, pageSize = 200): Promise<HistoryEntry[]> {
  const all: HistoryEntry[] = [];
  for (;;) {
    const res = await fetch(`${url}/api/history?offset=${all.length}&limit=${pageSize}`, init);
    if (res.status !== 200) throw new Error(`GET /api/history answered ${res.status}: ${await res.text()}`);
    const total = Number(res.headers.get('x-total-count'));
    const page = (await res.json()) as HistoryEntry[];
    all.push(...page);
    // A short page is the end; so is having as many as the server says it holds.
    if (page.length < pageSize || all.length >= total) return all;
  }
}
