import fs from 'node:fs';
import path from 'node:path';
import type { BatchEntry, BatchListing } from '../api/batch.ts';
import { resolveInside, walkFolder, type DataDirs } from '../api/data-dirs.ts';
import { StudioError } from '../api/errors.ts';

/** How Load Images (folder) orders the files it matched, before start and limit apply. */
export const BATCH_SORTS = ['name', 'name-desc', 'modified', 'modified-desc', 'size', 'size-desc'] as const;
export type BatchSort = (typeof BATCH_SORTS)[number];

export interface FolderQuery {
  folder: string;
  pattern: string;
  sort: string;
  start: number;
  limit: number;
}

/**
 * A glob as a regular expression over `/`-separated relative names, matched without regard to
 * case (scanners write `.JPG` as often as `.jpg`): `*` and `?` stay inside one folder, `**​/`
 * crosses any number of folders, `{a,b}` is either, `[abc]` one of.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '{') (braces++, (re += '(?:'));
    else if (ch === '}' && braces > 0) (braces--, (re += ')'));
    else if (ch === ',' && braces > 0) re += '|';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  if (braces > 0) throw new StudioError('BAD_INPUT', `${JSON.stringify(glob)} has a '{' without its '}'`);
  return new RegExp(`^${re}$`, 'i');
}

/**
 * The images of a folder under the inputs folder that match `pattern`, sorted, from `start`
 * (0-based) and at most `limit` of them (0: all). Hidden files are skipped; a pattern with a `/`
 * (e.g. `**​/*.png`) looks into subfolders. Problems come back as the widget and the reason.
 */
export function listBatch(dirs: DataDirs, q: FolderQuery, extensions: readonly string[]): BatchListing {
  const folderName = q.folder.trim().replace(/^\.\/?$/, '').replace(/\/+$/, '');
  let dir: string;
  try {
    dir = folderName === '' ? fs.realpathSync(dirs.folders.inputs) : resolveInside(dirs, 'inputs', folderName, 'folder');
  } catch (err) {
    if (err instanceof StudioError) return { input: 'folder', reason: err.message };
    throw err;
  }
  const shown = folderName === '' ? 'the inputs folder' : JSON.stringify(folderName);
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) return { input: 'folder', reason: `${shown} does not exist in the inputs folder` };
  if (!stat.isDirectory()) return { input: 'folder', reason: `${shown} is a file, not a folder` };
  let match: RegExp;
  try {
    match = globToRegExp(q.pattern.trim() === '' ? '*' : q.pattern.trim());
  } catch (err) {
    if (err instanceof StudioError) return { input: 'pattern', reason: err.message };
    throw err;
  }
  const deep = q.pattern.includes('/');
  const images: Array<{ rel: string; size: number; mtimeMs: number }> = [];
  const prefix = folderName === '' ? '' : `${folderName}/`;
  walkFolder(dirs, 'inputs', (e, rel, full) => {
    if (!rel.startsWith(prefix) && !prefix.startsWith(`${rel}/`)) return false;
    if (e.isDirectory()) return rel.length < prefix.length || deep;
    const inner = rel.slice(prefix.length);
    if (!e.isFile() || !extensions.includes(path.extname(e.name).toLowerCase()) || !match.test(inner)) return false;
    const st = fs.statSync(full);
    images.push({ rel: inner, size: st.size, mtimeMs: st.mtimeMs });
    return false;
  }, 32);
  if (images.length === 0) {
    return { input: 'pattern', reason: `no image in ${shown} matches ${JSON.stringify(q.pattern)} (images are ${extensions.join(' ')})` };
  }
  images.sort(comparator(q.sort as BatchSort));
  const entries: BatchEntry[] = images.map((f, i) => ({
    position: i + 1,
    source: f.rel,
    name: f.rel.slice(0, f.rel.length - path.extname(f.rel).length),
    file: prefix + f.rel,
  }));
  const picked = entries.slice(q.start, q.limit > 0 ? q.start + q.limit : undefined);
  if (picked.length === 0) return { input: 'start', reason: `start ${q.start} is past the last of the ${entries.length} matching images` };
  return { entries: picked };
}

const byName = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Names in natural order (scan2 before scan10); ties by name so that the order is total. */
function comparator(sort: BatchSort): (a: { rel: string; size: number; mtimeMs: number }, b: { rel: string; size: number; mtimeMs: number }) => number {
  const name = (a: { rel: string }, b: { rel: string }): number => byName.compare(a.rel, b.rel) || (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0);
  switch (sort) {
    case 'name-desc':
      return (a, b) => name(b, a);
    case 'modified':
      return (a, b) => a.mtimeMs - b.mtimeMs || name(a, b);
    case 'modified-desc':
      return (a, b) => b.mtimeMs - a.mtimeMs || name(a, b);
    case 'size':
      return (a, b) => a.size - b.size || name(a, b);
    case 'size-desc':
      return (a, b) => b.size - a.size || name(a, b);
    default:
      return name;
  }
}
