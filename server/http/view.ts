import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { resolveInside, type DataFolder } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerContext } from './context.ts';
import { imageContentType, thumbnailJpeg } from './image-check.ts';
import { queryString } from './upload.ts';

const VIEWABLE: readonly DataFolder[] = ['outputs', 'inputs', 'temp'];
/** Files are data, never pages: nothing in them may run, load or be framed, thumbnails included. */
export const FILE_CSP = "default-src 'none'; sandbox";
// Opening the resolved real path with O_NOFOLLOW closes the gap in which a checked path could be
// swapped for a symlink. Windows has no such flag.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * GET /api/view?file=NAME[&subfolder=S]&folder=outputs|inputs|temp: sends a file from a data
 * folder. Known image types are sent inline; anything else only as an attachment, and nosniff
 * keeps browsers from second-guessing either, so a file cannot become a page on our origin.
 */
export function viewRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/view', async (req, res) => {
    const folder = req.query.folder === undefined ? 'outputs' : queryString(req.query.folder, 'folder');
    if (!(VIEWABLE as readonly string[]).includes(folder)) {
      throw new StudioError('BAD_INPUT', `folder must be one of ${VIEWABLE.join(', ')}`);
    }
    const file = queryString(req.query.file ?? req.query.filename, 'file');
    const sub = req.query.subfolder === undefined || req.query.subfolder === '' ? '' : queryString(req.query.subfolder, 'subfolder');
    const name = sub ? `${sub}/${file}` : file;
    const target = resolveInside(ctx.dirs, folder as DataFolder, name);
    let real: string;
    try {
      real = await fs.promises.realpath(target);
    } catch {
      throw new StudioError('NOT_FOUND', `${folder}/${name} does not exist`);
    }
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(real, fs.constants.O_RDONLY | O_NOFOLLOW);
    } catch {
      throw new StudioError('NOT_FOUND', `${folder}/${name} cannot be read`);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new StudioError('NOT_FOUND', `${folder}/${name} is not a file`);
      const type = imageContentType(name);
      const thumb = req.query.thumb === undefined ? undefined : thumbSize(queryString(req.query.thumb, 'thumb'));
      if (type && thumb !== undefined) {
        // History strips show dozens of outputs: a downscaled JPEG instead of a 40 MB PNG each.
        // Only after the bytes prove to be a raster format within the limits (not an SVG named
        // .png, not a 1 x 60,000,000 strip) is anything decoded.
        const what = `${folder}/${name}`;
        const bytes = await thumbnailJpeg(await handle.readFile(), thumb, ctx.config.limits, what).catch((err: unknown) => {
          if (err instanceof StudioError && err.code === 'TOO_LARGE') throw new StudioError('BAD_IMAGE', `cannot make a thumbnail: ${err.message}`);
          throw err;
        });
        res.set({ 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': FILE_CSP, 'Cache-Control': 'no-cache' }).type('image/jpeg').send(bytes);
        return;
      }
      if (type) {
        res.type(type);
      } else {
        res.attachment(path.basename(name));
        res.type('application/octet-stream');
      }
      res.set({
        'Content-Length': String(stat.size),
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': FILE_CSP,
        'Cache-Control': 'no-cache',
      });
      await pipeline(handle.createReadStream({ autoClose: false }), res).catch((err: unknown) => {
        // Once bytes are on the wire there is no error to answer with; a client that went away
        // is not a server fault, so the response is simply cut.
        if (!res.headersSent) throw err;
        res.destroy();
      });
    } finally {
      await handle.close();
    }
  });
  return router;
}

function thumbSize(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 16 || n > 1024) throw new StudioError('BAD_INPUT', `thumb must be a whole number of pixels from 16 to 1024, got ${JSON.stringify(text)}`);
  return n;
}
