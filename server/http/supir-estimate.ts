import fs from 'node:fs';
import { Router } from 'express';
import { resolveInside } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import { convertHint } from '../../nodes/supir/load-model.ts';
import { describeEstimate, estimateInput, estimateMemory, tiledVaeAbove, VAE_UNTILED_BUDGET, type StagePeak } from '../../nodes/supir/lib/memory-estimate.ts';
import { SUPIR_COMPONENTS } from '../../nodes/supir/lib/pack-contract.ts';
import { readPack, type PackManifest } from '../../nodes/supir/lib/pack-manifest.ts';
import type { ServerContext } from './context.ts';
import { queryString } from './upload.ts';
import type { SupirEstimateJson } from '../protocol/supir-estimate.ts';

/**
 * Bytes of activations an untiled VAE pass may take before the estimate assumes the tiled VAE:
 * the rule bench/memory.ts applies (`tiledVaeAbove(input, 2e9)`).
 */
/** The size the estimate is for when the request does not say. */
export const DEFAULT_ESTIMATE_SIDE = 1024;

/**
 * GET /api/supir/estimate?pack=NAME[&width=W][&height=H]: how much memory a SUPIR run of the pack
 * (a folder of the models folder, as the Load SUPIR Model node's `pack` widget names it) needs at
 * W x H (1024 x 1024 by default), per stage, from its manifest (nodes/supir/lib/memory-estimate.ts).
 * The name is resolved inside the models folder as the node does; no request names a path.
 */
export function supirEstimateRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/supir/estimate', (req, res) => {
    if (req.query.pack === undefined || req.query.pack === '') throw new StudioError('BAD_INPUT', 'query parameter "pack" is required: the name of a model pack in the models folder');
    const pack = queryString(req.query.pack, 'pack');
    const width = side(req.query.width, 'width', ctx.config.limits.maxImageSide);
    const height = side(req.query.height, 'height', ctx.config.limits.maxImageSide);
    const { maxPixels } = ctx.config.limits;
    if (width * height > maxPixels) {
      throw new StudioError('BAD_INPUT', `width x height is ${width}x${height} = ${width * height} pixels; this server accepts at most ${maxPixels} (maxPixels)`);
    }
    const dir = resolveInside(ctx.dirs, 'models', pack, 'pack');
    const missing = (why: string): StudioError => new StudioError('NOT_FOUND', `no SUPIR model pack "${pack}" in the models folder (${why}); ${convertHint(ctx.env, pack)}`);
    const stat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!stat) throw missing(`there is no ${dir}`);
    if (!stat.isDirectory()) throw missing(`${dir} is a file, not a folder`);
    let manifest: PackManifest;
    try {
      manifest = readPack(dir, { require: [...SUPIR_COMPONENTS] });
    } catch (err) {
      if (!(err instanceof StudioError)) throw err;
      if (err.code === 'NOT_FOUND') throw missing(err.message);
      throw new StudioError(err.code, `model pack "${pack}" cannot be used: ${err.message}; ${convertHint(ctx.env, pack)}`);
    }
    const input = estimateInput(manifest);
    const above = tiledVaeAbove(input, VAE_UNTILED_BUDGET);
    const estimate = estimateMemory(input, width, height, width * height > above * above);
    const body: SupirEstimateJson = {
      pack,
      precision: manifest.precision,
      width,
      height,
      tiledVae: estimate.tiledVae,
      tiledVaeAbove: above,
      peak: estimate.peak,
      stages: estimate.stages,
      text: describeEstimate(estimate, manifest.precision),
    };
    res.set('Cache-Control', 'no-store').json(body);
  });
  return router;
}

/** A side in pixels: a positive multiple of 8 up to `max`, DEFAULT_ESTIMATE_SIDE when not given. */
function side(value: unknown, name: string, max: number): number {
  if (value === undefined) return DEFAULT_ESTIMATE_SIDE;
  const text = queryString(value, name);
  const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n <= 0 || n % 8 !== 0) throw new StudioError('BAD_INPUT', `${name} must be a positive multiple of 8 (pixels), got ${JSON.stringify(text)}`);
  if (n > max) throw new StudioError('BAD_INPUT', `${name} is ${n} pixels; this server accepts sides of at most ${max} (maxImageSide)`);
  return n;
}
