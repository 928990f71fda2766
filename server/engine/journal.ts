/**
 * The queue's journal on disk, so that a restart (or a crash, or a power cut) loses no prompt and
 * no history.
 *
 * Layout of the state folder (`<data>/state` for the server):
 *   journal-<gen>.log     JSON lines, one record per change, appended in order
 *   snapshot-<gen>.json   the whole state at the start of journal-<gen>.log, in the same record
 *                         format, ending with an `end` record; written to a temporary name,
 *                         flushed and renamed, so it is complete or absent
 *
 * Records: `put` (a queued prompt, or its new state), `finish` (its history entry; the prompt
 * leaves the queue), `remove` (history entries deleted), `running` (what runs now, which node).
 * Every record can be applied twice with the same result, which makes the switch to a new
 * generation safe without stopping writers.
 *
 * Writes are grouped: everything appended while the previous write was on its way goes out in one
 * write (group commit), and fdatasync runs beside the writer, so a burst of 500 submissions costs
 * a handful of writes and flushes, not 500 of each. A record's promise resolves once it is in the
 * file, which a crash of the process cannot undo; the data reaches the disk (safe from a power
 * cut) with the next fdatasync, milliseconds later. A crash can cut the last line of the log
 * short; that line is ignored on load (its promise had not resolved, so nobody was told it was
 * stored). When the log outgrows `compactBytes`, a snapshot is written and older files are deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ApiPrompt } from '../protocol/prompt.ts';
import type { HistoryEntry } from '../protocol/history.ts';
import { createLogger } from '../log.ts';

const log = createLogger('journal');

/** A prompt that has not finished, as stored. */
export interface JournalItem {
  id: string;
  number: number;
  client_id: string | null;
  created_at: number;
  prompt: ApiPrompt;
  workflow: unknown;
  /** Position in the queue: lower runs first (prompts queued at the front get lower numbers). */
  order: number;
  /** How many times a restart put this prompt back in the queue after it was cut off. */
  attempts: number;
}

/** What was running, as last recorded. */
export interface RunningMark {
  id: string;
  started_at: number;
  node: { id: string; type: string; title: string } | null;
}

export interface JournalState {
  /** Unfinished prompts in queue order (the one that was running included). */
  items: JournalItem[];
  /** Finished prompts, oldest first. */
  history: HistoryEntry[];
  /** What was running when the journal was last written, if it has not finished since. */
  running: RunningMark | null;
}

export interface JournalOptions {
  /** fdatasync the log after each group of records (default true). */
  fsync?: boolean;
  /** Log size above which a snapshot replaces the log (default 32 MiB). */
  compactBytes?: number;
}

type JournalRecord =
  | { t: 'put'; item: JournalItem }
  | { t: 'finish'; entry: HistoryEntry }
  | { t: 'remove'; id: string | null }
  | { t: 'running'; mark: RunningMark | null }
  | { t: 'end' };

const LOG_RE = /^journal-(\d+)\.log$/;
const SNAPSHOT_RE = /^snapshot-(\d+)\.json$/;

export class QueueJournal {
  private readonly fsync: boolean;
  private readonly compactBytes: number;
  // The state as the records describe it; the objects are shared with the queue, not copied.
  private readonly items = new Map<string, JournalItem>();
  private readonly history = new Map<string, HistoryEntry>();
  private running: RunningMark | null = null;

  private gen = 0;
  private handle: fs.promises.FileHandle | null = null;
  private logBytes = 0;
  private buffer: string[] = [];
  private bufferWaiters: Array<() => void> = [];
  private writing: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  /** Bytes were written since the last fdatasync began. */
  private dirty = false;
  private compacting: Promise<void> | null = null;
  private readonly lastWrite = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    readonly dir: string,
    opts: JournalOptions = {},
  ) {
    this.fsync = opts.fsync ?? true;
    this.compactBytes = opts.compactBytes ?? 32 * 1024 * 1024;
    fs.mkdirSync(dir, { recursive: true });
  }

  /**
   * Reads the state back (once, before any write): the newest complete snapshot, then every log
   * after it, in order. Files older than that snapshot and temporary files are removed.
   */
  load(): JournalState {
    const names = fs.readdirSync(this.dir);
    for (const name of names) if (name.endsWith('.tmp')) fs.rmSync(path.join(this.dir, name), { force: true });
    const gens = (re: RegExp): number[] =>
      names
        .map((n) => re.exec(n)?.[1])
        .filter((g): g is string => g !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    const logs = gens(LOG_RE);
    let base = -1;
    for (const g of gens(SNAPSHOT_RE).reverse()) {
      if (this.replayFile(path.join(this.dir, `snapshot-${g}.json`), true)) {
        base = g;
        break;
      }
      this.clear();
    }
    for (const g of logs) if (g >= base) this.replayFile(path.join(this.dir, `journal-${g}.log`), false);
    this.gen = Math.max(base, ...logs, 0);
    for (const name of names) {
      const g = Number(LOG_RE.exec(name)?.[1] ?? SNAPSHOT_RE.exec(name)?.[1] ?? NaN);
      if (g < base) fs.rmSync(path.join(this.dir, name), { force: true });
    }
    const current = path.join(this.dir, `journal-${this.gen}.log`);
    this.logBytes = fs.existsSync(current) ? fs.statSync(current).size : 0;
    let running = this.running;
    if (running && !this.items.has(running.id)) running = null;
    return {
      items: [...this.items.values()].sort((a, b) => a.order - b.order || a.number - b.number),
      history: [...this.history.values()],
      running,
    };
  }

  /** Stores a queued prompt (or its new state: attempts, order). Resolves once it is in the journal file. */
  putItem(item: JournalItem): Promise<void> {
    return this.append({ t: 'put', item }, item.id);
  }

  /** A prompt finished (or was cancelled): its history entry replaces its queue record. */
  finish(entry: HistoryEntry): Promise<void> {
    return this.append({ t: 'finish', entry }, entry.id);
  }

  /** Forgets one history entry, or all of them. */
  removeHistory(id?: string): Promise<void> {
    return this.append({ t: 'remove', id: id ?? null }, id);
  }

  /** Records the prompt (and node) running now, or that none is. */
  markRunning(mark: RunningMark | null): void {
    void this.append({ t: 'running', mark });
  }

  /** Resolves when every record about prompt `id` so far is on disk. */
  written(id: string): Promise<void> {
    return this.lastWrite.get(id) ?? Promise.resolve();
  }

  /** Resolves when every record so far is written and flushed to the disk (and a snapshot under way is complete). */
  async flush(): Promise<void> {
    while (this.writing || this.buffer.length > 0 || this.compacting || this.syncing || (this.fsync && this.dirty && this.handle)) {
      if (this.buffer.length > 0 && !this.writing) this.startWriting();
      if (this.fsync && this.dirty && this.handle && !this.syncing) this.syncing = this.syncLoop();
      await this.writing;
      await this.syncing;
      await this.compacting;
    }
  }

  /** Flushes and closes the log; later records are kept in memory only. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.handle?.close();
    this.handle = null;
  }

  private append(record: JournalRecord, id?: string): Promise<void> {
    this.apply(record);
    if (this.closed) return Promise.resolve();
    this.buffer.push(`${JSON.stringify(record)}\n`);
    const stored = new Promise<void>((resolve) => this.bufferWaiters.push(resolve));
    if (id !== undefined) {
      this.lastWrite.set(id, stored);
      void stored.then(() => {
        if (this.lastWrite.get(id) === stored) this.lastWrite.delete(id);
      });
    }
    if (!this.writing) this.startWriting();
    return stored;
  }

  /** One writer at a time; each round takes everything appended meanwhile (group commit). */
  private startWriting(): void {
    this.writing = this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.buffer.length > 0) {
        const lines = this.buffer;
        const waiters = this.bufferWaiters;
        this.buffer = [];
        this.bufferWaiters = [];
        try {
          this.handle ??= await fs.promises.open(path.join(this.dir, `journal-${this.gen}.log`), 'a', 0o600);
          const bytes = Buffer.from(lines.join(''), 'utf8');
          await this.handle.write(bytes);
          this.logBytes += bytes.length;
          this.dirty = true;
          if (this.fsync && !this.syncing) this.syncing = this.syncLoop();
        } catch (err) {
          log.error('cannot write the queue journal; these changes are kept in memory only', err);
        }
        for (const resolve of waiters) resolve();
        if (this.logBytes > this.compactBytes && !this.compacting) {
          await this.syncing; // the old log is complete on disk before the new generation starts
          await this.startCompaction();
        }
      }
    } finally {
      // Cleared in the same turn as the loop's last check, so an append that comes after it
      // always finds no writer and starts one.
      this.writing = null;
    }
  }

  /**
   * fdatasync runs beside the writer, not in its way: records are acknowledged once they are in
   * the file (safe from a crash of this process), and reach the platter a few milliseconds later
   * (safe from a power cut) while the next group is already being written.
   */
  private async syncLoop(): Promise<void> {
    try {
      while (this.dirty && this.handle) {
        this.dirty = false;
        await this.handle.datasync().catch((err: unknown) => log.error('cannot flush the queue journal to disk', err));
      }
    } finally {
      this.syncing = null;
    }
  }

  /**
   * Starts generation gen+1: new records go to a new log at once, and the state as of now is
   * written as its snapshot in the background. The old files go only once the snapshot is safe.
   */
  private async startCompaction(): Promise<void> {
    const old = this.gen;
    const next = old + 1;
    await this.handle?.close();
    this.handle = null;
    this.gen = next;
    this.logBytes = 0;
    const records: JournalRecord[] = [
      ...[...this.history.values()].map((entry): JournalRecord => ({ t: 'finish', entry })),
      ...[...this.items.values()].map((item): JournalRecord => ({ t: 'put', item })),
      { t: 'running', mark: this.running },
      { t: 'end' },
    ];
    this.compacting = this.writeSnapshot(next, records)
      .then(() => {
        for (const name of [`journal-${old}.log`, `snapshot-${old}.json`]) fs.rmSync(path.join(this.dir, name), { force: true });
        log.debug(`journal compacted into snapshot-${next}.json`);
      })
      .catch((err: unknown) => log.error('cannot write a journal snapshot; the older log is kept', err))
      .finally(() => {
        this.compacting = null;
      });
  }

  /** Writes the records in slices, letting the event loop run between them (10,000 entries are many MB). */
  private async writeSnapshot(gen: number, records: JournalRecord[]): Promise<void> {
    const file = path.join(this.dir, `snapshot-${gen}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    const handle = await fs.promises.open(tmp, 'w', 0o600);
    try {
      // Slices of about 4 ms of work or 1 MB, whichever comes first.
      let chunk: string[] = [];
      let size = 0;
      let sliceStart = performance.now();
      for (const record of records) {
        const line = `${JSON.stringify(record)}\n`;
        chunk.push(line);
        size += line.length;
        if (size > 1 << 20 || performance.now() - sliceStart > 4) {
          await handle.write(chunk.join(''));
          chunk = [];
          size = 0;
          await new Promise((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
      await handle.write(chunk.join(''));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  }

  /** Applies a file's records; false when a snapshot is incomplete (no `end`). */
  private replayFile(file: string, snapshot: boolean): boolean {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      log.error(`cannot read ${file}`, err);
      return false;
    }
    const lines = text.split('\n');
    let ended = false;
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let record: JournalRecord;
      try {
        record = JSON.parse(line) as JournalRecord;
      } catch {
        // The last line of a log may have been cut by a crash: it was never acknowledged.
        if (i < lines.length - 1 || snapshot) log.error(`${file}: line ${i + 1} is damaged and was skipped`);
        return;
      }
      if (!isRecord(record)) {
        log.error(`${file}: line ${i + 1} is not a journal record and was skipped`);
        return;
      }
      if (record.t === 'end') ended = true;
      else this.apply(record);
    });
    if (snapshot && !ended) log.error(`${file} is incomplete and was not used`);
    return !snapshot || ended;
  }

  private apply(record: JournalRecord): void {
    switch (record.t) {
      case 'put':
        this.items.set(record.item.id, record.item);
        break;
      case 'finish':
        this.history.delete(record.entry.id);
        this.history.set(record.entry.id, record.entry);
        this.items.delete(record.entry.id);
        break;
      case 'remove':
        if (record.id === null) this.history.clear();
        else this.history.delete(record.id);
        break;
      case 'running':
        this.running = record.mark;
        break;
      case 'end':
        break;
    }
  }

  private clear(): void {
    this.items.clear();
    this.history.clear();
    this.running = null;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isRecord(v: unknown): v is JournalRecord {
  if (!isObject(v)) return false;
  switch (v.t) {
    case 'put':
      return isJournalItem(v.item);
    case 'finish':
      return isHistoryEntry(v.entry);
    case 'remove':
      return v.id === null || typeof v.id === 'string';
    case 'running':
      return v.mark === null || (isObject(v.mark) && typeof v.mark.id === 'string' && typeof v.mark.started_at === 'number');
    case 'end':
      return true;
    default:
      return false;
  }
}

function isJournalItem(v: unknown): v is JournalItem {
  return (
    isObject(v) &&
    typeof v.id === 'string' &&
    Number.isInteger(v.number) &&
    (v.client_id === null || typeof v.client_id === 'string') &&
    typeof v.created_at === 'number' &&
    isObject(v.prompt) &&
    typeof v.order === 'number' &&
    Number.isInteger(v.attempts)
  );
}

function isHistoryEntry(v: unknown): v is HistoryEntry {
  return isObject(v) && typeof v.id === 'string' && Number.isInteger(v.number) && typeof v.status === 'string' && isObject(v.outputs) && Array.isArray(v.executed) && isObject(v.prompt);
}
