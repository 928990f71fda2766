import fs from 'node:fs';
import path from 'node:path';
import { StudioError } from './errors.ts';

import { DATA_FOLDERS, type DataFolder } from './file-ref.ts';

export { DATA_FOLDERS, type DataFolder };

export interface DataDirs {
  root: string;
  folders: Record<DataFolder, string>;
}

export function createDataDirs(root: string, overrides: Partial<Record<DataFolder, string>> = {}): DataDirs {
  const absRoot = path.resolve(root);
  const folders = Object.fromEntries(
    DATA_FOLDERS.map((f) => [f, path.resolve(overrides[f] ?? path.join(absRoot, f))]),
  ) as Record<DataFolder, string>;
  for (const dir of Object.values(folders)) fs.mkdirSync(dir, { recursive: true });
  return { root: absRoot, folders };
}

const SEGMENT_RE = /^[^\0/\\:*?"<>|\x01-\x1f]+$/;
/** The longest file or folder name (one path segment) common file systems allow, in bytes. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Checks a relative name given by a user ("sub/photo.png") and returns it normalised with forward
 * slashes. Refuses absolute paths, `..` and `.` segments, NUL and control characters, drive
 * letters and backslashes, so that the name cannot leave its folder before any file is touched.
 */
export function checkRelativeName(name: string, what = 'file name'): string {
  if (typeof name !== 'string' || name.length === 0) throw badPath(what, 'is empty');
  if (name.length > 1024) throw badPath(what, 'is longer than 1024 characters');
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw badPath(what, `${JSON.stringify(name)} must be a relative path without empty, "." or ".." parts`);
    }
    if (!SEGMENT_RE.test(segment)) {
      throw badPath(what, `${JSON.stringify(name)} contains a character that is not allowed in a file name`);
    }
    const bytes = Buffer.byteLength(segment, 'utf8');
    if (bytes > MAX_SEGMENT_BYTES) {
      const part = segments.length === 1 ? `is ${bytes} bytes long` : `has a part of ${bytes} bytes ("${segment.slice(0, 24)}...")`;
      throw badPath(what, `${part}; a file or folder name may have at most ${MAX_SEGMENT_BYTES}`);
    }
  }
  return segments.join('/');
}

/**
 * Resolves `name` inside a data folder and proves, with realpath, that the result (or for a file
 * not yet written, its nearest existing parent) is still inside: symlinks that escape are refused,
 * and so are symlinks that lead nowhere (dangling, or in a loop) and files used as folders, which
 * could not be written through anyway.
 */
export function resolveInside(dirs: DataDirs, folder: DataFolder, name: string, what = 'file name'): string {
  const base = fs.realpathSync(dirs.folders[folder]);
  const rel = checkRelativeName(name, what);
  const target = path.join(base, ...rel.split('/'));
  // The nearest entry that exists, a dangling symlink included (lstat, not exists/stat).
  let probe = target;
  while (!lstatOrUndefined(probe)) {
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  let real: string;
  try {
    real = fs.realpathSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ELOOP' && code !== 'ENOTDIR') throw err;
    const at = path.relative(base, probe).split(path.sep).join('/');
    throw badPath(what, `${JSON.stringify(name)} passes through ${JSON.stringify(at)}, a symlink that leads nowhere`);
  }
  if (real !== base && !real.startsWith(base + path.sep)) {
    throw badPath(what, `${JSON.stringify(name)} leads outside the ${folder} folder`);
  }
  if (probe !== target && !fs.statSync(real).isDirectory()) {
    const at = path.relative(base, probe).split(path.sep).join('/');
    throw badPath(what, `${JSON.stringify(name)} uses ${JSON.stringify(at)} as a folder, but it is a file`);
  }
  return target;
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Walks a data folder (hidden entries skipped): `visit` gets each entry with its relative name and
 * says whether to descend into a folder. The one place that reads folder listings for pickers.
 */
export function walkFolder(dirs: DataDirs, folder: DataFolder, visit: (entry: fs.Dirent, rel: string, full: string) => boolean | void, maxDepth = 8): void {
  const walk = (dir: string, prefix: string, depth: number): void => {
    if (depth > maxDepth) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(dir, e.name);
      if (visit(e, prefix + e.name, full) === true && e.isDirectory()) walk(full, `${prefix}${e.name}/`, depth + 1);
    }
  };
  walk(dirs.folders[folder], '', 0);
}

/** Lists files of a data folder (recursively, as relative names) whose extension is in `exts`. */
export function listFiles(dirs: DataDirs, folder: DataFolder, exts: readonly string[]): string[] {
  const out: string[] = [];
  walkFolder(dirs, folder, (e, rel) => {
    if (e.isDirectory()) return true;
    if (e.isFile() && exts.includes(path.extname(e.name).toLowerCase())) out.push(rel);
  });
  return out.sort();
}

/** Writes a file atomically (temporary name, then rename) so that no reader sees half of it. */
export async function writeFileAtomic(target: string, bytes: Uint8Array): Promise<void> {
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  // A short hidden name beside the target (listings skip it): a target name of the longest
  // length a file system allows must not become too long for the temporary one.
  const tmp = path.join(path.dirname(target), `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await fs.promises.writeFile(tmp, bytes, { flag: 'wx' });
    await fs.promises.rename(tmp, target);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

function badPath(what: string, reason: string): StudioError {
  return new StudioError('BAD_PATH', `${what} ${reason}`);
}
