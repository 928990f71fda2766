/**
 * The queue's journal on disk, so that a restart (or a crash, or a power cut) loses no prompt and
 * no history.
 *
 * Layout of the state folder (`<data>/state` for the server):
 *   journal-<gen>.log     one record per line, one line per change, appended in order
 *   snapshot-<gen>.json   the whole state at the start of journal-<gen>.log, one line per queued
 *                         prompt or history entry, ending with an `end` record; written to a
 *                         temporary name, flushed and renamed, so it is complete or absent
 *   bodies/<id>.json      the prompt and workflow of a prompt larger than `inlineBodyBytes`; its
 *                         records and its history entry keep a reference (size and CRC32) instead
 *
 * Lines carry a CRC32 of their JSON (see journal-files.ts): a damaged line is skipped, reported in
 * the load result and health(), and its file is copied aside (`<name>.damaged-<time>`) before any
 * compaction could delete it. A snapshot that cannot be used is renamed aside
 * (`<name>.corrupt-<time>`) and never overwritten or deleted. Files are read and written as streams
 * of lines, never as one string.
 *
 * Records: `put` (a queued prompt, or its new state), `finish` (its history entry; the prompt
 * leaves the queue), `remove` (history entries deleted), `drop` (a queued prompt withdrawn without
 * a history entry: its record could not be stored), `running` (what runs now, which node). Every
 * record can be applied twice with the same result, which makes the switch to a new generation
 * safe without stopping writers.
 *
 * Writes are grouped: everything appended while the previous write was on its way goes out in one
 * write (group commit), and fdatasync runs beside the writer, so a burst of 500 submissions costs
 * a handful of writes and flushes, not 500 of each. A record's promise resolves once it is in the
 * file, which a crash of the process cannot undo; the data reaches the disk (safe from a power
 * cut) with the next fdatasync, milliseconds later. A crash can cut the last line of the log
 * short; that line is ignored on load (its promise had not resolved, so nobody was told it was
 * stored). When the log outgrows `compactBytes`, a snapshot is written and older files are deleted.
 *
 * When a write fails (disk full, read-only or missing folder, I/O error), the record's promise
 * rejects, health() says why and every later record is refused at once: the state in memory goes on,
 * but nothing is acknowledged as stored. Retries (after 1 s, then less often, and whenever
 * ensureWritable() is called) write the whole state as a snapshot of a new generation; once one
 * succeeds the journal is whole again and writes resume.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ApiPrompt } from '../protocol/prompt.ts';
import type { HistoryEntry } from '../protocol/history.ts';
import { createLogger } from '../log.ts';
import {
  bodyPath,
  bodyRef,
  decodeLine,
  encodeBody,
  encodeLine,
  errorText,
  forEachLineSync,
  isBodyId,
  isBodyRef,
  readBody,
  readBodySync,
  writeFileAtomic,
  MAX_LINE_BYTES,
  type BodyRef,
} from './journal-files.ts';

export type { BodyRef };

const log = createLogger('journal');

/** A prompt that has not finished, as stored. */
export interface JournalItem {
  id: string;
  number: number;
  client_id: string | null;
  created_at: number;
  /** `{}` when `body` is set. */
  prompt: ApiPrompt;
  /** null when `body` is set. */
  workflow: unknown;
  /** Position in the queue: lower runs first (prompts queued at the front get lower numbers). */
  order: number;
  /** How many times a restart put this prompt back in the queue after it was cut off. */
  attempts: number;
  /** Set when the prompt and workflow are stored in bodies/<id>.json rather than here. */
  body?: BodyRef;
}

/** A queued prompt as load() gives it back: prompt and workflow read back from their body file. */
export interface LoadedItem extends JournalItem {
  /** Why the prompt could not be read back from its body file (it cannot run). */
  bodyError?: string;
}

/** A history entry as kept: with `body`, its prompt is `{}` and its workflow null (both are in bodies/<id>.json). */
export type StoredHistoryEntry = HistoryEntry & { body?: BodyRef };

/** What was running, as last recorded. */
export interface RunningMark {
  id: string;
  started_at: number;
  node: { id: string; type: string; title: string } | null;
}

/** Something found damaged while loading: a line skipped, a file that could not be used. */
export interface JournalDamage {
  /** File name in the state folder. */
  file: string;
  /** 1-based line number, for a damaged line. */
  line?: number;
  problem: string;
  /** Where the damaged file was kept (renamed or copied), so that nothing compacts it away. */
  kept_as?: string;
}

/** Whether the journal can store records now, and what loading it found. */
export interface JournalHealth {
  ok: boolean;
  /** Why records cannot be stored, while ok is false. */
  error: string | null;
  /** Since when (ms since the epoch), while ok is false. */
  since: number | null;
  /** Damage found when the journal was loaded (at most 50 items, then a count). */
  damage: JournalDamage[];
}

export interface JournalState {
  /** Unfinished prompts in queue order (the one that was running included). */
  items: LoadedItem[];
  /** Finished prompts, oldest first. */
  history: StoredHistoryEntry[];
  /** What was running when the journal was last written, if it has not finished since. */
  running: RunningMark | null;
  /** Lines skipped and files set aside while loading; empty when all was well. */
  damage: JournalDamage[];
}

export interface JournalOptions {
  /** fdatasync the log after each group of records, and snapshots and body files before they are renamed (default true). */
  fsync?: boolean;
  /** Log size above which a snapshot replaces the log (default 32 MiB). */
  compactBytes?: number;
  /** Prompt and workflow (as JSON) larger than this are stored in a file of their own (default 256 KiB). */
  inlineBodyBytes?: number;
  /** First wait before retrying after a failed write, doubled up to 30 s (default 1000 ms). */
  retryMs?: number;
}

/** Thrown (as a rejection) for a record that could not be stored. */
export class JournalWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalWriteError';
  }
}

type JournalRecord =
  | { t: 'put'; item: JournalItem }
  | { t: 'finish'; entry: StoredHistoryEntry }
  | { t: 'remove'; id: string | null }
  | { t: 'drop'; id: string }
  | { t: 'running'; mark: RunningMark | null }
  | { t: 'end' };

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

const LOG_RE = /^journal-(\d+)\.log$/;
const SNAPSHOT_RE = /^snapshot-(\d+)\.json$/;
const BODY_RE = /^(.+)\.json$/;
const MAX_DAMAGE_REPORTS = 50;
/** Largest write of the log, in characters of the lines it joins. */
const WRITE_CHUNK_CHARS = 8 << 20;
/** ensureWritable() tries again at most this often. */
const MIN_RETRY_GAP_MS = 1000;
const MAX_RETRY_MS = 30_000;

export class QueueJournal {
  private readonly fsync: boolean;
  private readonly compactBytes: number;
  private readonly inlineBytes: number;
  private readonly retryMs: number;
  // The state as the records describe it; the objects are shared with the queue, not copied.
  private readonly items = new Map<string, JournalItem>();
  private readonly history = new Map<string, StoredHistoryEntry>();
  private running: RunningMark | null = null;

  private gen = 0;
  private handle: fs.promises.FileHandle | null = null;
  private logBytes = 0;
  private buffer: string[] = [];
  private bufferWaiters: Waiter[] = [];
  /** Body files that the records in `buffer` free (deleted once those records are stored). */
  private bufferDeletes: string[] = [];
  private writing: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  /** Bytes were written since the last fdatasync began. */
  private dirty = false;
  private compacting: Promise<void> | null = null;
  /** A compaction is due even though the log is small (load moved large bodies out of it). */
  private compactSoon = false;
  private readonly lastWrite = new Map<string, Promise<void>>();
  /** Body files being written, by prompt id: null once written, or the error. */
  private readonly bodyWrites = new Map<string, Promise<Error | null>>();
  private closed = false;

  private failure: { error: string; since: number } | null = null;
  private recovering: Promise<void> | null = null;
  private lastAttempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;

  private readonly damage: JournalDamage[] = [];
  private damageCount = 0;
  /** Damaged files that could not be set aside: never deleted by this process. */
  private readonly keep = new Set<string>();
  /** Something was lost on load: body files that nothing refers to may belong to it, so none is deleted. */
  private keepBodies = false;

  constructor(
    readonly dir: string,
    opts: JournalOptions = {},
  ) {
    this.fsync = opts.fsync ?? true;
    this.compactBytes = opts.compactBytes ?? 32 * 1024 * 1024;
    this.inlineBytes = opts.inlineBodyBytes ?? 256 * 1024;
    this.retryMs = opts.retryMs ?? 1000;
    this.retryDelay = this.retryMs;
    fs.mkdirSync(dir, { recursive: true });
  }

  /**
   * Reads the state back (once, before any write): the newest snapshot that can be used, then every
   * log after it, in order. Files older than that snapshot and temporary files are removed; damaged
   * files are kept aside.
   */
  load(): JournalState {
    const names = fs.readdirSync(this.dir);
    for (const name of names) if (name.endsWith('.tmp')) fs.rmSync(path.join(this.dir, name), { force: true });
    this.removeBodyTemporaries();
    const gens = (re: RegExp): number[] =>
      names
        .map((n) => re.exec(n)?.[1])
        .filter((g): g is string => g !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    const logs = gens(LOG_RE);
    const snapshots = gens(SNAPSHOT_RE);
    /** History entries whose line was long: written before bodies were stored apart. */
    const inlineBig = new Set<string>();
    let base = -1;
    for (const g of [...snapshots].reverse()) {
      const name = `snapshot-${g}.json`;
      const problem = this.replayFile(name, true, inlineBig);
      if (problem === null) {
        base = g;
        break;
      }
      this.clear();
      inlineBig.clear();
      // Never deleted or overwritten: it may hold what nothing else does.
      this.setAside(name, 'corrupt', problem);
    }
    let lastTorn = false;
    for (const g of logs) {
      if (g < base) continue;
      const name = `journal-${g}.log`;
      const problem = this.replayFile(name, false, inlineBig);
      if (problem === 'torn') lastTorn = g === logs.at(-1);
      else if (problem !== null) this.setAside(name, 'corrupt', problem);
    }
    this.gen = Math.max(0, ...logs, ...snapshots);
    // A last line cut short would swallow the next record appended after it: write to a new log.
    if (lastTorn) this.gen++;
    for (const name of names) {
      const g = Number(LOG_RE.exec(name)?.[1] ?? SNAPSHOT_RE.exec(name)?.[1] ?? NaN);
      if (g < base && !this.keep.has(name)) fs.rmSync(path.join(this.dir, name), { force: true });
    }
    this.keepBodies = this.damageCount > 0;
    this.moveOutInlineBodies(inlineBig);
    const current = path.join(this.dir, `journal-${this.gen}.log`);
    this.logBytes = fs.existsSync(current) ? fs.statSync(current).size : 0;
    let running = this.running;
    if (running && !this.items.has(running.id)) running = null;
    const items = [...this.items.values()].sort((a, b) => a.order - b.order || a.number - b.number).map((item) => this.withBody(item));
    return { items, history: [...this.history.values()], running, damage: [...this.damage] };
  }

  /** Whether records can be stored now, why not, and what loading found. */
  health(): JournalHealth {
    return { ok: this.failure === null, error: this.failure?.error ?? null, since: this.failure?.since ?? null, damage: [...this.damage] };
  }

  /** Why records cannot be stored now, or null (no retry: see ensureWritable). */
  failed(): string | null {
    return this.failure ? this.failureMessage() : null;
  }

  /**
   * Null when records can be stored; otherwise tries to write the journal again (at most once a
   * second) and says why it still cannot.
   */
  async ensureWritable(): Promise<string | null> {
    if (!this.failure) return null;
    if (Date.now() - this.lastAttempt >= MIN_RETRY_GAP_MS || this.recovering) await this.recover();
    return this.failure ? this.failureMessage() : null;
  }

  /**
   * For a prompt whose prompt and workflow are larger than `inlineBodyBytes`: starts writing them to
   * bodies/<id>.json and returns the reference its records keep instead (the next record written
   * waits for the file). Undefined for a prompt small enough to keep in its records.
   */
  storeBody(id: string, prompt: ApiPrompt, workflow: unknown): BodyRef | undefined {
    if (this.closed || !isBodyId(id)) return undefined;
    const text = encodeBody(prompt, workflow);
    if (text.length <= this.inlineBytes) return undefined;
    const bytes = Buffer.from(text, 'utf8');
    const ref = bodyRef(bytes);
    const write = (async (): Promise<Error | null> => {
      await fs.promises.mkdir(path.join(this.dir, 'bodies'), { recursive: true });
      await writeFileAtomic(bodyPath(this.dir, id), bytes, this.fsync);
      return null;
    })().catch((err: unknown) => this.fail(err));
    this.bodyWrites.set(id, write);
    void write.then(() => {
      if (this.bodyWrites.get(id) === write) this.bodyWrites.delete(id);
    });
    return ref;
  }

  /** The bytes of a body file (`{"prompt":...,"workflow":...}`), checked against its reference; rejects with the reason. */
  readBody(id: string, ref: BodyRef): Promise<Buffer> {
    return readBody(this.dir, id, ref);
  }

  /** Stores a queued prompt (or its new state: attempts, order). Resolves once it is in the journal file; rejects if it cannot be stored. */
  putItem(item: JournalItem): Promise<void> {
    return this.append({ t: 'put', item }, item.id);
  }

  /** A prompt finished (or was cancelled): its history entry replaces its queue record. */
  finish(entry: StoredHistoryEntry): Promise<void> {
    return this.append({ t: 'finish', entry }, entry.id);
  }

  /** Forgets one history entry, or all of them. */
  removeHistory(id?: string): Promise<void> {
    return this.append({ t: 'remove', id: id ?? null }, id);
  }

  /** Withdraws a queued prompt without a history entry (its record could not be stored, so nobody was told it was queued). */
  drop(id: string): Promise<void> {
    return this.append({ t: 'drop', id }, id);
  }

  /** Records the prompt (and node) running now, or that none is. */
  markRunning(mark: RunningMark | null): void {
    void this.append({ t: 'running', mark });
  }

  /** Resolves when every record about prompt `id` so far is on disk; rejects if the last one could not be stored. */
  written(id: string): Promise<void> {
    return this.lastWrite.get(id) ?? Promise.resolve();
  }

  /** Resolves when every record so far is written and flushed to the disk (and a snapshot under way is complete), or refused. */
  async flush(): Promise<void> {
    while (
      this.writing ||
      this.buffer.length > 0 ||
      this.compacting ||
      this.syncing ||
      this.recovering ||
      this.bodyWrites.size > 0 ||
      (this.fsync && this.dirty && this.handle)
    ) {
      if (this.buffer.length > 0 && !this.writing && !this.recovering) this.startWriting();
      if (this.fsync && this.dirty && this.handle && !this.syncing) this.syncing = this.syncLoop();
      await this.writing;
      await this.syncing;
      await this.compacting;
      await this.recovering;
      await Promise.all(this.bodyWrites.values());
    }
  }

  /** Flushes and closes the log; later records are kept in memory only. */
  async close(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.flush();
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.handle?.close().catch(() => {});
    this.handle = null;
  }

  private append(record: JournalRecord, id?: string): Promise<void> {
    const frees = this.bodiesFreedBy(record);
    this.apply(record);
    if (this.closed) return Promise.resolve();
    let waiter!: Waiter;
    const stored = new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
    // Most callers do not wait; a record that cannot be stored must not become an unhandled rejection.
    stored.catch(() => {});
    if (id !== undefined) {
      this.lastWrite.set(id, stored);
      const forget = (): void => {
        if (this.lastWrite.get(id) === stored) this.lastWrite.delete(id);
      };
      stored.then(forget, forget);
    }
    if (this.failure && !this.recovering) {
      // Nothing is written until a retry has stored the whole state again (which includes this record).
      waiter.reject(this.failureError());
      return stored;
    }
    this.buffer.push(encodeLine(record));
    this.bufferWaiters.push(waiter);
    this.bufferDeletes.push(...frees);
    if (!this.writing && !this.recovering) this.startWriting();
    return stored;
  }

  /** One writer at a time; each round takes everything appended meanwhile (group commit). */
  private startWriting(): void {
    this.writing = this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.buffer.length > 0 && !this.recovering) {
        const lines = this.buffer;
        const waiters = this.bufferWaiters;
        const deletes = this.bufferDeletes;
        this.buffer = [];
        this.bufferWaiters = [];
        this.bufferDeletes = [];
        let error: Error | null = this.failure ? this.failureError() : null;
        if (!error) {
          try {
            // The body files these records refer to are written first.
            for (const result of await Promise.all([...this.bodyWrites.values()])) if (result) throw result;
            if (this.failure) throw this.failureError();
            this.handle ??= await fs.promises.open(path.join(this.dir, `journal-${this.gen}.log`), 'a', 0o600);
            // In writes of a few MB: a burst of large records must not be joined into one string.
            for (let i = 0; i < lines.length; ) {
              let size = 0;
              const start = i;
              while (i < lines.length && (i === start || size + lines[i]!.length <= WRITE_CHUNK_CHARS)) size += lines[i++]!.length;
              const bytes = Buffer.from(i - start === 1 ? lines[start]! : lines.slice(start, i).join(''), 'utf8');
              await this.handle.write(bytes);
              this.logBytes += bytes.length;
            }
            this.dirty = true;
            if (this.fsync && !this.syncing) this.syncing = this.syncLoop();
          } catch (err) {
            error = err instanceof JournalWriteError ? err : this.fail(err);
          }
        }
        for (const waiter of waiters) {
          if (error) waiter.reject(error);
          else waiter.resolve();
        }
        if (!error) this.deleteBodies(deletes);
        if (!this.failure && (this.logBytes > this.compactBytes || this.compactSoon) && !this.compacting) {
          this.compactSoon = false;
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
        await this.handle.datasync().catch((err: unknown) => {
          // What was written may not be on the disk: refuse new records until a snapshot is safe.
          log.error('cannot flush the queue journal to disk', err);
          this.fail(err);
        });
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
    const next = this.gen + 1;
    await this.handle?.close().catch(() => {});
    this.handle = null;
    this.gen = next;
    this.logBytes = 0;
    const records = this.captureRecords();
    this.compacting = this.writeSnapshot(next, records)
      .then(() => {
        this.removeOlderThan(next, records);
        log.debug(`journal compacted into snapshot-${next}.json`);
      })
      .catch((err: unknown) => log.error('cannot write a journal snapshot; the older files are kept', err))
      .finally(() => {
        this.compacting = null;
      });
  }

  /** Tries to store the whole state again after a failed write: a snapshot of a new generation. */
  private recover(): Promise<void> {
    if (!this.failure || this.closed) return Promise.resolve();
    this.recovering ??= this.recoverOnce().finally(() => {
      this.recovering = null;
      if (this.buffer.length > 0 && !this.writing) this.startWriting();
    });
    return this.recovering;
  }

  private async recoverOnce(): Promise<void> {
    this.lastAttempt = Date.now();
    // Let whatever is under way end first (it fails or finishes; records appended from now on wait).
    await this.writing;
    await this.syncing;
    await this.compacting;
    const next = this.gen + 1;
    const records = this.captureRecords();
    try {
      await this.writeSnapshot(next, records);
    } catch (err) {
      this.fail(err);
      // Records appended while this attempt ran are not in any file.
      const waiters = this.bufferWaiters;
      this.buffer = [];
      this.bufferWaiters = [];
      this.bufferDeletes = [];
      for (const waiter of waiters) waiter.reject(this.failureError());
      return;
    }
    const old = this.handle;
    this.handle = null;
    await old?.close().catch(() => {});
    this.gen = next;
    this.logBytes = 0;
    this.dirty = false;
    log.info(`the queue journal can be written again (it could not since ${new Date(this.failure!.since).toISOString()}); the whole state is in snapshot-${next}.json`);
    this.failure = null;
    this.retryDelay = this.retryMs;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.removeOlderThan(next, records);
  }

  /** Records a failed write: refuses records until a retry succeeds. Returns the error to reject records with. */
  private fail(err: unknown): JournalWriteError {
    const message = errorText(err);
    if (!this.failure) {
      log.error(`cannot write the queue journal in ${this.dir}; new prompts are refused until it can be written again`, err);
      this.failure = { error: message, since: Date.now() };
    } else {
      this.failure.error = message;
    }
    this.scheduleRetry();
    return this.failureError();
  }

  private failureMessage(): string {
    return `the queue journal in ${this.dir} cannot be written (${this.failure?.error ?? 'closed'})`;
  }

  private failureError(): JournalWriteError {
    return new JournalWriteError(this.failureMessage());
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.recover().then(() => {
        if (this.failure) this.scheduleRetry();
      });
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
  }

  /** Every queued prompt and history entry, and what runs: the content of a snapshot. */
  private captureRecords(): JournalRecord[] {
    return [
      ...[...this.history.values()].map((entry): JournalRecord => ({ t: 'finish', entry })),
      ...[...this.items.values()].map((item): JournalRecord => ({ t: 'put', item })),
      { t: 'running', mark: this.running },
      { t: 'end' },
    ];
  }

  /**
   * Writes the records one line each, in slices, letting the event loop run between them: a
   * snapshot may be larger than any one string can be.
   */
  private async writeSnapshot(gen: number, records: JournalRecord[]): Promise<void> {
    const file = path.join(this.dir, `snapshot-${gen}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const handle = await fs.promises.open(tmp, 'w', 0o600);
      try {
        // Slices of about 4 ms of work or 1 MB, whichever comes first.
        let chunk: string[] = [];
        let size = 0;
        let sliceStart = performance.now();
        for (const record of records) {
          const line = encodeLine(record);
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
        if (this.fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }

  /** After snapshot-<gen> is safe: older logs and snapshots go, and body files nothing refers to. */
  private removeOlderThan(gen: number, snapshot: JournalRecord[]): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const g = Number(LOG_RE.exec(name)?.[1] ?? SNAPSHOT_RE.exec(name)?.[1] ?? NaN);
      if (g < gen && !this.keep.has(name)) fs.rmSync(path.join(this.dir, name), { force: true });
    }
    if (this.keepBodies) return;
    const referenced = new Set<string>(this.bodyWrites.keys());
    for (const record of snapshot) {
      if (record.t === 'finish' && record.entry.body) referenced.add(record.entry.id);
      if (record.t === 'put' && record.item.body) referenced.add(record.item.id);
    }
    for (const entry of this.history.values()) if (entry.body) referenced.add(entry.id);
    for (const item of this.items.values()) if (item.body) referenced.add(item.id);
    let bodies: string[] = [];
    try {
      bodies = fs.readdirSync(path.join(this.dir, 'bodies'));
    } catch {
      return;
    }
    for (const name of bodies) {
      const id = BODY_RE.exec(name)?.[1];
      if (id !== undefined && !referenced.has(id)) fs.rmSync(path.join(this.dir, 'bodies', name), { force: true });
    }
  }

  /** The ids whose body file a record frees (decided before it is applied). */
  private bodiesFreedBy(record: JournalRecord): string[] {
    if (record.t === 'remove') {
      if (record.id !== null) return this.history.get(record.id)?.body ? [record.id] : [];
      return [...this.history.values()].filter((e) => e.body).map((e) => e.id);
    }
    if (record.t === 'drop') return this.items.get(record.id)?.body ? [record.id] : [];
    return [];
  }

  private deleteBodies(ids: string[]): void {
    for (const id of ids) {
      if (this.items.get(id)?.body || this.history.get(id)?.body) continue;
      void fs.promises.rm(bodyPath(this.dir, id), { force: true }).catch((err: unknown) => log.warn(`cannot delete the body file of ${id}`, err));
    }
  }

  private removeBodyTemporaries(): void {
    const dir = path.join(this.dir, 'bodies');
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) if (name.endsWith('.tmp')) fs.rmSync(path.join(dir, name), { force: true });
  }

  /**
   * Applies a file's records. Returns null when the file was used; 'torn' when it was used and its
   * last line had been cut short (a crash mid-write: that record was never acknowledged); or why it
   * could not be used (unreadable, or a snapshot without its `end`).
   */
  private replayFile(name: string, snapshot: boolean, inlineBig: Set<string>): string | null {
    const file = path.join(this.dir, name);
    let ended = false;
    let torn = false;
    let damaged = 0;
    const firstDamage = this.damage.length;
    const readError = forEachLineSync(file, (line, lineNo, terminated) => {
      if (line === null) {
        damaged++;
        this.report({ file: name, line: lineNo, problem: `longer than ${MAX_LINE_BYTES} bytes` });
        return;
      }
      if (line.length === 0) return;
      const decoded = decodeLine(line);
      if (!decoded.ok) {
        if (!terminated && !snapshot) {
          torn = true;
          log.info(`${file}: the last line was cut short (a crash while it was written; it had not been acknowledged) and is ignored`);
          return;
        }
        damaged++;
        this.report({ file: name, line: lineNo, problem: decoded.problem });
        return;
      }
      const record = decoded.value;
      if (!isRecord(record)) {
        damaged++;
        this.report({ file: name, line: lineNo, problem: 'not a journal record' });
        return;
      }
      if (!terminated && !snapshot) torn = true;
      if (record.t === 'end') {
        ended = true;
        return;
      }
      if (record.t === 'finish' && !record.entry.body && line.length > this.inlineBytes) inlineBig.add(record.entry.id);
      this.apply(record);
    });
    if (readError !== null) return `cannot be read: ${readError}`;
    if (snapshot && !ended) return 'incomplete: it has no end record';
    if (damaged > 0) {
      // A compaction would delete this file: keep a copy with the damaged lines, for whoever can repair them.
      const keptAs = this.setAside(name, 'damaged', null);
      for (const d of this.damage.slice(firstDamage)) if (keptAs) d.kept_as = keptAs;
    }
    return torn ? 'torn' : null;
  }

  /** Renames (corrupt: the file is not used) or copies (damaged: some lines were skipped) a file aside. */
  private setAside(name: string, how: 'corrupt' | 'damaged', problem: string | null): string | undefined {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const target = `${name}.${how}-${stamp}`;
    const from = path.join(this.dir, name);
    let keptAs: string | undefined = target;
    try {
      if (how === 'corrupt') fs.renameSync(from, path.join(this.dir, target));
      else fs.copyFileSync(from, path.join(this.dir, target));
    } catch (err) {
      log.error(`cannot keep ${from} aside; it is left as it is and never deleted`, err);
      this.keep.add(name);
      keptAs = undefined;
    }
    if (problem !== null) this.report({ file: name, problem, ...(keptAs ? { kept_as: keptAs } : {}) });
    return keptAs;
  }

  private report(damage: JournalDamage): void {
    this.damageCount++;
    log.error(`${path.join(this.dir, damage.file)}${damage.line ? `: line ${damage.line}` : ''}: ${damage.problem}; skipped`);
    if (this.damage.length < MAX_DAMAGE_REPORTS) this.damage.push(damage);
    else if (this.damage.length === MAX_DAMAGE_REPORTS) this.damage.push({ file: '', problem: 'more damage was found; see the log' });
  }

  /**
   * History entries loaded from lines written before large bodies were stored apart: their prompt
   * and workflow move to body files (the next compaction rewrites the records without them), so the
   * history in memory stays small.
   */
  private moveOutInlineBodies(ids: Set<string>): void {
    for (const id of ids) {
      const entry = this.history.get(id);
      if (!entry || entry.body || !isBodyId(id)) continue;
      const bytes = Buffer.from(encodeBody(entry.prompt, entry.workflow), 'utf8');
      if (bytes.length <= this.inlineBytes) continue;
      const file = bodyPath(this.dir, id);
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(tmp, bytes, { mode: 0o600 });
        if (this.fsync) {
          const fd = fs.openSync(tmp, 'r');
          try {
            fs.fdatasyncSync(fd);
          } finally {
            fs.closeSync(fd);
          }
        }
        fs.renameSync(tmp, file);
      } catch (err) {
        fs.rmSync(tmp, { force: true });
        log.warn(`cannot store the prompt of history entry ${id} apart; it stays in the journal`, err);
        continue;
      }
      entry.body = bodyRef(bytes);
      entry.prompt = {};
      entry.workflow = null;
      this.compactSoon = true;
    }
  }

  /** A queued prompt with its prompt and workflow read back from its body file. */
  private withBody(item: JournalItem): LoadedItem {
    if (!item.body) return item;
    try {
      const { prompt, workflow } = readBodySync(this.dir, item.id, item.body);
      return { ...item, prompt: prompt as ApiPrompt, workflow };
    } catch (err) {
      const problem = `the stored prompt cannot be read back: ${errorText(err)}`;
      this.report({ file: `bodies/${item.id}.json`, problem });
      this.keepBodies = true;
      return { ...item, bodyError: problem };
    }
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
      case 'drop':
        this.items.delete(record.id);
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
    case 'drop':
      return typeof v.id === 'string';
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
    Number.isInteger(v.attempts) &&
    (v.body === undefined || isBodyRef(v.body))
  );
}

function isHistoryEntry(v: unknown): v is StoredHistoryEntry {
  return (
    isObject(v) &&
    typeof v.id === 'string' &&
    Number.isInteger(v.number) &&
    typeof v.status === 'string' &&
    isObject(v.outputs) &&
    Array.isArray(v.executed) &&
    isObject(v.prompt) &&
    (v.body === undefined || isBodyRef(v.body))
  );
}
