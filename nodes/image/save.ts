import fs from 'node:fs';
import path from 'node:path';
import { checkRelativeName, resolveInside, writeFileAtomic } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import type { NodeContext } from '../api/define.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { combo, int, string } from '../api/widgets.ts';
import { encodeImage, type EncodeFormat } from './codec.ts';
import { addPngTextChunks, asciiJson } from './png-text.ts';

const EXTENSIONS: Record<EncodeFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

/**
 * Choosing a counter and writing the file must not interleave between two Save Image nodes running
 * at once, or both would pick the same free name and one file would replace the other.
 */
let writeQueue: Promise<unknown> = Promise.resolve();
function serialised<T>(task: () => Promise<T>): Promise<T> {
  const run = writeQueue.then(task, task);
  writeQueue = run.catch(() => undefined);
  return run;
}

export default defineNode({
  id: 'SaveImage',
  displayName: 'Save Image',
  category: 'image',
  description: 'Saves each image of the batch to the outputs folder as <prefix>_00001_.png with the next free number.',
  output: true,
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    filename_prefix: string({ default: 'supir', maxLength: 200, description: 'May name a subfolder: "portraits/face".' }),
    format: combo({ options: ['png', 'jpeg', 'webp'], default: 'png' }),
    quality: int({ default: 95, min: 1, max: 100, step: 1, description: 'JPEG and WebP quality; PNG is lossless.' }),
  },
  outputs: {},
  validate({ filename_prefix }) {
    const reason = prefixProblem(filename_prefix);
    return reason ? [['filename_prefix', reason]] : [];
  },
  async execute({ image, filename_prefix, format, quality }, ctx) {
    const reason = prefixProblem(filename_prefix);
    if (reason) throw new InputError('filename_prefix', reason, 'BAD_PATH');
    const fmt = format as EncodeFormat;
    const text = pngText(ctx);
    for (let index = 0; index < image.n; index++) {
      ctx.checkAborted();
      let bytes: Uint8Array = await encodeImage(image, fmt, { index, quality });
      if (fmt === 'png' && text) bytes = addPngTextChunks(bytes, text);
      const filename = await serialised(() => writeNext(ctx, filename_prefix, EXTENSIONS[fmt], bytes));
      ctx.addFile({ folder: 'outputs', filename, kind: 'image', width: image.w, height: image.h });
      ctx.progress(index + 1, image.n);
    }
    return {};
  },
});

function prefixProblem(prefix: string): string | undefined {
  try {
    checkRelativeName(prefix, 'filename_prefix');
    return undefined;
  } catch (err) {
    if (err instanceof StudioError) return err.message;
    throw err;
  }
}

/** The ComfyUI convention: read back by tools that reopen a workflow from its picture. */
function pngText(ctx: NodeContext): Record<string, string> | undefined {
  const entries: Record<string, string> = {};
  if (ctx.extra.prompt !== undefined) entries.prompt = asciiJson(ctx.extra.prompt);
  if (ctx.extra.workflow !== undefined) entries.workflow = asciiJson(ctx.extra.workflow);
  return Object.keys(entries).length > 0 ? entries : undefined;
}

/** Writes under the first unused `<base>_NNNNN_.<ext>` after the highest number already there. */
async function writeNext(ctx: NodeContext, prefix: string, ext: string, bytes: Uint8Array): Promise<string> {
  const rel = checkRelativeName(prefix, 'filename_prefix');
  const slash = rel.lastIndexOf('/');
  const sub = slash < 0 ? '' : rel.slice(0, slash + 1);
  const base = rel.slice(slash + 1);
  const dir = path.dirname(resolveInside(ctx.env.dirs, 'outputs', rel));
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(\\d+)_\\.`);
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  let counter = 1;
  for (const name of names) {
    const m = pattern.exec(name);
    if (m) counter = Math.max(counter, Number(m[1]) + 1);
  }
  for (;;) {
    const filename = `${sub}${base}_${String(counter).padStart(5, '0')}_.${ext}`;
    const target = resolveInside(ctx.env.dirs, 'outputs', filename);
    // Another process (or a hand-copied file) may hold the name: never overwrite an output.
    if (!fs.existsSync(target)) {
      await writeFileAtomic(target, bytes);
      return filename;
    }
    counter++;
  }
}
