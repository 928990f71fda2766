import fs from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { checkRelativeName, resolveInside, writeFileAtomic } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import { createLogger } from '../log.ts';
import type { ServerContext } from './context.ts';
import { IMAGE_EXTENSIONS } from '../../nodes/image/load.ts';
import { checkImageBytes } from './image-check.ts';

const log = createLogger('upload');

/** Longest upload file name, in bytes: room is left for the " (n)" that keeps an existing file. */
export const MAX_UPLOAD_NAME_BYTES = 200;

/**
 * POST /api/upload?filename=NAME[&subfolder=S][&overwrite=1] with the raw file as the body. The
 * file is kept only if its bytes are PNG, JPEG, WebP or TIFF (whatever the name says), its header
 * is within the side and pixel limits, and it then decodes; it is written atomically into the
 * inputs folder. Without overwrite an existing name gets a " (n)" suffix instead.
 */
export function uploadRouter(ctx: ServerContext): Router {
  const router = Router();
  const limit = ctx.config.limits.maxUploadBytes;
  const parse = express.raw({ type: () => true, limit });
  // The body parser's own 413 names neither the file nor the limit; this one says both.
  const raw: express.RequestHandler = (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if ((err as { type?: string } | undefined)?.type !== 'entity.too.large') return next(err);
      const name = typeof req.query.filename === 'string' ? `uploaded file ${JSON.stringify(req.query.filename)}` : 'the uploaded file';
      const size = Number(req.headers['content-length']);
      const sized = Number.isFinite(size) && size > 0 ? ` (${sizeText(size)})` : '';
      next(new StudioError('TOO_LARGE', `${name}${sized} is larger than this server accepts for an upload (at most ${sizeText(limit)})`));
    });
  };
  router.post('/api/upload', raw, async (req, res) => {
    const filename = checkRelativeName(queryString(req.query.filename, 'filename'), 'filename');
    if (filename.includes('/')) throw new StudioError('BAD_PATH', 'filename must not contain "/" (use subfolder)');
    const nameBytes = Buffer.byteLength(filename, 'utf8');
    if (nameBytes > MAX_UPLOAD_NAME_BYTES) {
      throw new StudioError('BAD_PATH', `filename is ${nameBytes} bytes long; an uploaded file's name may have at most ${MAX_UPLOAD_NAME_BYTES}`);
    }
    const subRaw = req.query.subfolder === undefined ? '' : queryString(req.query.subfolder, 'subfolder');
    const subfolder = subRaw === '' ? '' : checkRelativeName(subRaw, 'subfolder');
    // Only what Load Image lists may be uploaded, so every upload can be chosen on the node.
    if (!(IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(filename).toLowerCase())) {
      throw new StudioError('BAD_INPUT', `filename must end in one of ${IMAGE_EXTENSIONS.join(' ')}`);
    }
    const bytes: unknown = req.body;
    if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new StudioError('BAD_INPUT', 'the upload body is empty');
    const info = await checkImageBytes(bytes, ctx.config.limits, `uploaded file ${JSON.stringify(filename)}`);

    const overwrite = req.query.overwrite === '1' || req.query.overwrite === 'true';
    const name = overwrite ? filename : freeName(ctx, subfolder, filename);
    const target = resolveInside(ctx.dirs, 'inputs', join(subfolder, name));
    if (fs.existsSync(target) && !fs.statSync(target).isFile()) {
      throw new StudioError('BAD_PATH', `${JSON.stringify(join(subfolder, name))} is a folder in inputs`);
    }
    await writeFileAtomic(target, bytes).catch((err: unknown) => {
      // What the checks above cannot foresee (the folder changed meanwhile): the name's fault, not ours.
      const code = (err as NodeJS.ErrnoException).code;
      if (code && PATH_ERRORS.has(code)) throw new StudioError('BAD_PATH', `inputs/${join(subfolder, name)} cannot be written there (${code})`);
      throw err;
    });
    log.info(`stored inputs/${join(subfolder, name)} (${info.width}x${info.height} ${info.format}, ${bytes.length} bytes)`);
    res.json({ name, subfolder, folder: 'inputs', width: info.width, height: info.height });
  });
  return router;
}

/** File system errors that say the name or the folders on its way are wrong, not the server. */
const PATH_ERRORS = new Set(['ENAMETOOLONG', 'ENOTDIR', 'EEXIST', 'EISDIR', 'ELOOP', 'ENOENT']);

/** "photo.png", or "photo (1).png", "photo (2).png"... when taken. */
function freeName(ctx: ServerContext, subfolder: string, filename: string): string {
  const ext = path.extname(filename);
  const stem = filename.slice(0, filename.length - ext.length);
  for (let n = 0; n < 10_000; n++) {
    const candidate = n === 0 ? filename : `${stem} (${n})${ext}`;
    if (!fs.existsSync(resolveInside(ctx.dirs, 'inputs', join(subfolder, candidate)))) return candidate;
  }
  throw new StudioError('BAD_INPUT', `too many files named like ${JSON.stringify(filename)}; pass overwrite=1`);
}

function sizeText(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.ceil(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

function join(subfolder: string, name: string): string {
  return subfolder ? `${subfolder}/${name}` : name;
}

/** A query parameter given once as text (not repeated, not an object). */
export function queryString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new StudioError('BAD_INPUT', `query parameter "${name}" must be given once`);
  return value;
}
