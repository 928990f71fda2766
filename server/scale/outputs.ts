/**
 * Files written by workers, as they arrive at the server (PUT /api/worker/files). A worker runs each
 * attempt of a prompt in an empty scratch folder, so its file names are the same at every attempt
 * (`supir_00001_.png`); the server gives each such name its final name once, remembers it in Redis
 * (`supir:files:<prompt id>`), and writes a retried attempt's file over the first one: a job that
 * ran twice leaves one file.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { checkRelativeName, resolveInside, writeFileAtomic, type DataDirs } from '../../nodes/api/data-dirs.ts';
import { keys } from './wire.ts';

/** Folders a worker may send files into. */
export const WORKER_FOLDERS = ['outputs', 'temp'] as const;
export type WorkerFolder = (typeof WORKER_FOLDERS)[number];

/** Kept a week: long enough for any retry, gone once the prompt is recorded. */
const MAP_TTL_S = 7 * 24 * 3600;

export class OutputStore {
  /** Names handed out but not yet on disk, so two uploads at once never get the same one. */
  private readonly reserved = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dirs: DataDirs,
    private readonly redis: Redis,
  ) {}

  /**
   * Writes `bytes` under the final name of the worker's `name` for prompt `id`; returns that name.
   * With `replace` (a name the file's node chose for it: Save Image's `{name}` in a batch) the
   * name is kept and a file of that name is written over, as the node itself does in-process: an
   * image run again, by a retry or a later batch, never leaves a `-2` copy.
   */
  async put(id: string, folder: WorkerFolder, name: string, bytes: Uint8Array, replace = false): Promise<string> {
    const rel = checkRelativeName(name, 'name');
    const field = `${folder}/${rel}`;
    if (replace) {
      await this.serialised(() => writeFileAtomic(resolveInside(this.dirs, folder, rel, 'name'), bytes));
      return rel;
    }
    const final = await this.serialised(async () => {
      const known = await this.redis.hget(keys.files(id), field);
      if (known) return known;
      const chosen = this.freeName(folder, rel);
      this.reserved.add(`${folder}/${chosen}`);
      // Stored before the file is written: a retry that arrives meanwhile takes the same name.
      await this.redis.multi().hsetnx(keys.files(id), field, chosen).expire(keys.files(id), MAP_TTL_S).exec();
      return (await this.redis.hget(keys.files(id), field)) ?? chosen;
    });
    try {
      await writeFileAtomic(resolveInside(this.dirs, folder, final, 'name'), bytes);
    } finally {
      this.reserved.delete(`${folder}/${final}`);
    }
    return final;
  }

  /** Forgets the names of a recorded prompt. */
  async forget(id: string): Promise<void> {
    await this.redis.del(keys.files(id));
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task, task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * `<base>_NNNNN_.<ext>` (Save Image's counter) gets the next number free in the server's folder;
   * any other name is kept when free, else gets `-2`, `-3`, ... before its extension.
   */
  private freeName(folder: WorkerFolder, rel: string): string {
    const slash = rel.lastIndexOf('/');
    const sub = slash < 0 ? '' : rel.slice(0, slash + 1);
    const file = rel.slice(slash + 1);
    const dir = path.dirname(resolveInside(this.dirs, folder, rel, 'name'));
    const names = new Set(safeReaddir(dir).map((n) => `${folder}/${sub}${n}`));
    for (const r of this.reserved) names.add(r);
    const taken = (candidate: string): boolean => names.has(`${folder}/${candidate}`);
    const counter = /^(.*)_(\d{5,})_\.([A-Za-z0-9]+)$/.exec(file);
    if (counter) {
      const [, base, , ext] = counter;
      const pattern = new RegExp(`^${escape(`${folder}/${sub}${base}`)}_(\\d+)_\\.`);
      let next = 1;
      for (const n of names) {
        const m = pattern.exec(n);
        if (m) next = Math.max(next, Number(m[1]) + 1);
      }
      for (;; next++) {
        const candidate = `${sub}${base}_${String(next).padStart(5, '0')}_.${ext}`;
        if (!taken(candidate)) return candidate;
      }
    }
    if (!taken(rel)) return rel;
    const dot = file.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [file.slice(0, dot), file.slice(dot)] : [file, ''];
    for (let n = 2; ; n++) {
      const candidate = `${sub}${stem}-${n}${ext}`;
      if (!taken(candidate)) return candidate;
    }
  }
}

export function isWorkerFolder(value: unknown): value is WorkerFolder {
  return (WORKER_FOLDERS as readonly unknown[]).includes(value);
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
