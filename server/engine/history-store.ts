/**
 * The finished prompts a queue remembers, oldest first, kept in step with the journal: the one
 * store behind both the in-process queue (queue.ts) and the Redis one (server/scale), so that
 * recording, trimming to the limit and waiting for a prompt to finish work alike in both.
 */
import type { HistoryEntry } from '../protocol/history.ts';
import type { QueueJournal, StoredHistoryEntry } from './journal.ts';

export class HistoryStore {
  private readonly entries = new Map<string, StoredHistoryEntry>();
  private readonly waiters = new Map<string, Array<(entry: HistoryEntry) => void>>();

  constructor(
    private readonly journal: QueueJournal | undefined,
    private readonly limit = 10_000,
  ) {}

  /** Oldest first. Entries with `body` carry `{}` and null for prompt and workflow (see historyBody). */
  list(): StoredHistoryEntry[] {
    return [...this.entries.values()];
  }

  get(id: string): StoredHistoryEntry | undefined {
    return this.entries.get(id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries read back from the journal at start-up (not written again). */
  restore(entries: readonly StoredHistoryEntry[]): void {
    for (const entry of entries) this.entries.set(entry.id, entry);
    this.trim();
  }

  /** Records a finished prompt, in the journal too; settle() then wakes those waiting for it. */
  add(entry: StoredHistoryEntry): void {
    this.entries.set(entry.id, entry);
    void this.journal?.finish(entry);
    this.trim();
  }

  settle(entry: HistoryEntry): void {
    for (const resolve of this.waiters.get(entry.id) ?? []) resolve(entry);
    this.waiters.delete(entry.id);
  }

  /** Forgets one entry, or all of them, on disk too. */
  remove(id?: string): void {
    if (id === undefined) this.entries.clear();
    else this.entries.delete(id);
    void this.journal?.removeHistory(id);
  }

  /** Resolves when prompt `id` has finished, however it ended. */
  whenDone(id: string): Promise<HistoryEntry> {
    const done = this.entries.get(id);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), resolve]));
  }

  /** Drops the oldest entries over the limit, on disk too. */
  private trim(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.limit) break;
      this.entries.delete(key);
      void this.journal?.removeHistory(key);
    }
  }
}
