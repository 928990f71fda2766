import type { FileRef } from '../../nodes/api/define.ts';

export interface CacheEntry {
  outputs: Record<string, unknown>;
  files: FileRef[];
  bytes: number;
}

/** Node output cache across runs, keyed by content signature. Strategies implement this. */
export interface OutputCache {
  get(key: string): CacheEntry | undefined;
  set(key: string, entry: CacheEntry): void;
  clear(): void;
  stats(): { entries: number; bytes: number; budget: number };
}

/**
 * Least-recently-used cache bounded by the bytes its outputs hold. An entry larger than the whole
 * budget is not kept; a run in progress holds its own references, so eviction never breaks it.
 */
export class LruOutputCache implements OutputCache {
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(key: string): CacheEntry | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, entry: CacheEntry): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    if (entry.bytes > this.budget) return;
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.budget) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): { entries: number; bytes: number; budget: number } {
    return { entries: this.entries.size, bytes: this.bytes, budget: this.budget };
  }
}
