import fs from 'node:fs';
import path from 'node:path';
import { checkRelativeName, resolveInside, writeFileAtomic } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import type { BatchItem, FileRef, NodeContext } from '../api/define.ts';
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
  description:
    'Saves each image to the outputs folder as <prefix>_00001_.png with the next free number; in a batch (Load Images (folder)), {name} and {index} in the prefix name each file after its source instead.',
  output: true,
  inputs: {
    image: { type: 'IMAGE' },
    caption: { type: 'STRING', optional: true, description: 'Written beside the image as a .txt file of the same name (a caption per image, e.g. from Caption).' },
  },
  widgets: {
    filename_prefix: string({
      default: 'supir',
      maxLength: 200,
      description:
        'May name a subfolder: "portraits/face". In a batch, {name} is the source file\'s name (without extension) and {index} its place in the folder (00001): "restored/{name}" saves restored/scan_001.png, and a batch run again skips the images saved already.',
    }),
    format: combo({ options: ['png', 'jpeg', 'webp'], default: 'png' }),
    quality: int({ default: 95, min: 1, max: 100, step: 1, description: 'JPEG and WebP quality; PNG is lossless.' }),
  },
  outputs: {},
  validate({ filename_prefix }) {
    const reason = prefixProblem(filename_prefix);
    return reason ? [['filename_prefix', reason]] : [];
  },
  resumeFiles({ filename_prefix, format }, item) {
    if (typeof filename_prefix !== 'string' || !hasTokens(filename_prefix)) return undefined;
    return [{ folder: 'outputs', filename: `${fillTokens(filename_prefix, item)}.${EXTENSIONS[format as EncodeFormat]}`, kind: 'image' }];
  },
  async execute({ image, caption, filename_prefix, format, quality }, ctx) {
    const reason = prefixProblem(filename_prefix);
    if (reason) throw new InputError('filename_prefix', reason, 'BAD_PATH');
    const fmt = format as EncodeFormat;
    const ext = EXTENSIONS[fmt];
    const text = pngText(ctx);
    const named = ctx.batch !== undefined && hasTokens(filename_prefix);
    const prefix = fillTokens(filename_prefix, ctx.batch);
    const filled = named ? prefixProblem(prefix) : undefined;
    if (filled) throw new InputError('filename_prefix', `with {name} and {index} filled in, ${filled}`, 'BAD_PATH');
    // Named after its source, the first image is written last: once it exists, so do the others
    // and the caption, which is what lets a batch run again skip it (resumeFiles).
    const order = named ? [...Array.from({ length: image.n - 1 }, (_, k) => k + 1), 0] : Array.from({ length: image.n }, (_, k) => k);
    let done = 0;
    for (const index of order) {
      ctx.checkAborted();
      let bytes: Uint8Array = await encodeImage(image, fmt, { index, quality });
      if (fmt === 'png' && text) bytes = addPngTextChunks(bytes, text);
      const note = caption !== undefined && (named ? index === order[0] : true) ? new TextEncoder().encode(caption) : undefined;
      let files: FileRef[];
      if (named) {
        const base = index === 0 ? prefix : `${prefix}_${index + 1}`;
        files = await writeNamed(ctx, prefix, base, ext, bytes, note);
      } else {
        files = await serialised(() => writeNext(ctx, prefix, ext, bytes, note));
      }
      for (const f of files) ctx.addFile({ ...f, width: image.w, height: image.h });
      ctx.progress(++done, image.n);
    }
    return {};
  },
});

const TOKENS = /\{(name|index)\}/g;
const hasTokens = (prefix: string): boolean => /\{(name|index)\}/.test(prefix);

/** `{name}` and `{index}` in a prefix, from a batch's image; outside a batch, "image" and 00001. */
function fillTokens(prefix: string, item: BatchItem | undefined): string {
  return prefix.replace(TOKENS, (_, token: string) => (token === 'name' ? (item?.name ?? 'image') : String(item?.position ?? 1).padStart(5, '0')));
}

/** Writes `<base>.<ext>` (replacing it atomically), after the caption `<captionBase>.txt` if any. */
async function writeNamed(ctx: NodeContext, captionBase: string, base: string, ext: string, bytes: Uint8Array, note: Uint8Array | undefined): Promise<FileRef[]> {
  if (note) await writeFileAtomic(resolveInside(ctx.env.dirs, 'outputs', `${captionBase}.txt`, 'filename_prefix'), note);
  const filename = `${base}.${ext}`;
  await writeFileAtomic(resolveInside(ctx.env.dirs, 'outputs', filename, 'filename_prefix'), bytes);
  return [{ folder: 'outputs', filename, kind: 'image' }];
}

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

/**
 * Writes under the first unused `<base>_NNNNN_.<ext>` after the highest number already there, and
 * the caption, if any, before it as `<base>_NNNNN_.txt`.
 */
async function writeNext(ctx: NodeContext, prefix: string, ext: string, bytes: Uint8Array, note?: Uint8Array): Promise<FileRef[]> {
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
      if (note) await writeFileAtomic(target.slice(0, target.length - ext.length) + 'txt', note);
      await writeFileAtomic(target, bytes);
      return [{ folder: 'outputs', filename, kind: 'image' }];
    }
    counter++;
  }
}
