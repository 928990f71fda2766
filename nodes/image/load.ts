import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { listFiles, resolveInside } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import type { NodeEnv } from '../api/env.ts';
import { InputError, StudioError, type ErrorCode } from '../api/errors.ts';
import { combo } from '../api/widgets.ts';
import { decodeImage } from './codec.ts';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'] as const;

/**
 * Content hashes by absolute path, reused while size and mtime are unchanged: the fingerprint is
 * asked for on every queue, and rehashing a 100 MB TIFF each time would stall the queue.
 */
const hashCache = new Map<string, { size: number; mtimeMs: number; ino: number; hash: string }>();
const HASH_CACHE_MAX = 4096;

export default defineNode({
  id: 'LoadImage',
  displayName: 'Load Image',
  category: 'image',
  description: 'Loads an image from the inputs folder as 8-bit or 16-bit sRGB, turned upright by its EXIF orientation.',
  inputs: {},
  widgets: {
    image: combo({
      options: (env) => listFiles(env.dirs, 'inputs', IMAGE_EXTENSIONS),
      default: '',
      upload: 'image',
      description: 'A file in the inputs folder.',
    }),
  },
  outputs: { image: 'IMAGE' },
  async fingerprint({ image }, env) {
    return hashFile(existingFile(env, image));
  },
  validate({ image }, env) {
    const found = locate(env, image);
    return 'reason' in found ? [['image', found.reason]] : [];
  },
  async execute({ image }, ctx) {
    const file = existingFile(ctx.env, image);
    const bytes = await fs.promises.readFile(file);
    try {
      return { image: await decodeImage(bytes, ctx.env.limits, JSON.stringify(image)) };
    } catch (err) {
      if (err instanceof StudioError) throw new InputError('image', err.message, err.code);
      throw err;
    }
  },
});

type Located = { file: string } | { reason: string; code: ErrorCode };

/** Finds the file without throwing, so that validate and execute give the same reasons. */
function locate(env: NodeEnv, name: string): Located {
  if (!name) return { reason: 'no image chosen', code: 'NOT_FOUND' };
  let file: string;
  try {
    file = resolveInside(env.dirs, 'inputs', name);
  } catch (err) {
    if (err instanceof StudioError) return { reason: err.message, code: err.code };
    throw err;
  }
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat) return { reason: `${JSON.stringify(name)} does not exist in the inputs folder`, code: 'NOT_FOUND' };
  if (!stat.isFile()) return { reason: `${JSON.stringify(name)} is not a file`, code: 'NOT_FOUND' };
  return { file };
}

function existingFile(env: NodeEnv, name: string): string {
  const found = locate(env, name);
  if ('reason' in found) throw new InputError('image', found.reason, found.code);
  return found.file;
}

/** The file's SHA-256 (hex), reused while its size, mtime and inode are unchanged. */
export async function hashFile(file: string): Promise<string> {
  const stat = await fs.promises.stat(file);
  const cached = hashCache.get(file);
  // The inode is compared too: an upload replaced by rename can keep size and mtime.
  if (cached && cached.size === stat.size && cached.mtimeMs === stat.mtimeMs && cached.ino === stat.ino) {
    return cached.hash;
  }
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  if (hashCache.size >= HASH_CACHE_MAX) hashCache.delete(hashCache.keys().next().value!);
  hashCache.set(file, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, hash: digest });
  return digest;
}
