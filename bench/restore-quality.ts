/**
 * What the shipped restoration models do to image quality, measured against the clean photo
 * (PSNR in dB and SSIM, RGB at 8 bits), through the real nodes (Load Upscale Model → Upscale Image)
 * on the CPU, on the shared test photos (../shared/testimages).
 *
 * 1. Chains for the default workflow, each ending in x4: bicubic, a median filter then bicubic,
 *    ESRGAN alone, MAXIM denoise then bicubic or ESRGAN, and denoise → deblur → ESRGAN. Two cases:
 *    - at the input's size: a 128 px crop of each photo degraded the way a phone photo taken in poor light is
 *      (Blur σ 0.8, Add Noise σ 15-25, JPEG 75; our Degrade nodes), each x4 result shrunk back
 *      (area) and scored against the clean crop: this judges the restoration;
 *    - at x4: Degrade (Real-ESRGAN), light preset at x4, of the photo's centre (up to 512 px),
 *      scored at x4 against that centre (4 px border left out): this judges the enlargement.
 * 2. Each MAXIM model at x1 on a 128x128 crop of each photo, on the degradation it was trained for
 *    (denoise: Gaussian noise σ 15 and 25; deblur: motion and Gaussian blur; enhancement: low light
 *    by gamma; dehazing: synthetic haze), as the gain over the degraded input, beside the gain of the
 *    plain filters (median 3x3, unsharp mask, normalise). Deraining and retouching have no clean
 *    synthetic counterpart here and are not measured.
 *
 * MAXIM runs one 128 px tile in ~3-10 s on the 2-core machine, so the photos are few and small:
 * the whole bench is 33 MAXIM runs (52 s on a quiet machine, up to 6.5 min on a busy one). Converted models are kept in $TMPDIR/supir-bench-restore.
 * `npx tsx bench/restore-quality.ts` runs it alone; tools/restore-figures.ts runs it and writes
 * the README figures from the same images.
 */
import os from 'node:os';
import path from 'node:path';
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type NodeEnv } from '../nodes/api/env.ts';
import type { ModelHandle } from '../nodes/api/sockets.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { resample } from '../nodes/image/resize.ts';
import LoadUpscaleModel from '../nodes/upscale/load-model.ts';
import UpscaleImage from '../nodes/upscale/upscale-image.ts';
import { createModelLibrary } from '../server/models/library.ts';
import { createRuntime } from '../server/runtime/index.ts';
import { fakeContext, runNode } from '../test/support/fake-context.ts';
import * as cases from './restore-cases.ts';
import type { FilterName, Score } from './restore-cases.ts';

export const CHAINS = ['bicubic x4', 'median 3x3 → bicubic x4', 'ESRGAN x4', 'denoise → bicubic x4', 'denoise → ESRGAN x4', 'denoise → deblur → ESRGAN x4'] as const;
export type ChainName = (typeof CHAINS)[number];
const ESRGAN = 'esrgan-medium x4';

export interface ChainRow {
  photo: string;
  degradation: string;
  /**
   * input: a 128 px crop degraded at its own size; each x4 result is shrunk back (area) and scored
   * against the clean crop, which judges the restoration and not the enlargement. x4: the clean
   * image is 4x the input (the input made from it by Degrade at x4); results are scored at x4.
   */
  at: 'input' | 'x4';
  input: ImageTensor;
  clean: ImageTensor;
  outputs: Partial<Record<ChainName, ImageTensor>>;
  scores: Partial<Record<ChainName, Score>>;
  seconds: Partial<Record<ChainName, number>>;
  /** The degraded input's own score (`at` input only). */
  inputScore?: Score;
}

export interface ModelRow {
  model: string;
  degradation: string;
  photo: string;
  clean: ImageTensor;
  degraded: ImageTensor;
  restored: ImageTensor;
  input: Score;
  filters: Record<FilterName, Score>;
  filtered: Record<FilterName, ImageTensor>;
  restoredScore: Score;
}

/** Each MAXIM model with the degradations it is matched with. */
const MATCHED: Array<{ model: string; degradations: Array<{ name: string; make: (env: NodeEnv, clean: ImageTensor, seed: number) => Promise<ImageTensor> }> }> = [
  {
    model: 'maxim-denoising',
    degradations: [
      { name: 'Gaussian noise σ15', make: (env, x, seed) => cases.gaussianNoise(env, x, 15, seed) },
      { name: 'Gaussian noise σ25', make: (env, x, seed) => cases.gaussianNoise(env, x, 25, seed) },
    ],
  },
  {
    model: 'maxim-deblurring',
    degradations: [
      { name: 'motion blur 9 px', make: async (_env, x) => cases.motionBlur(x, 9, 30) },
      { name: 'Gaussian blur σ1.5', make: (env, x, seed) => cases.gaussianBlur(env, x, 1.5, seed) },
    ],
  },
  { model: 'maxim-enhancement', degradations: [{ name: 'low light (0.7·x^2.2)', make: async (_env, x) => cases.lowLight(x) }] },
  { model: 'maxim-dehazing-outdoor', degradations: [{ name: 'haze (t 0.45-0.75)', make: async (_env, x) => cases.haze(x) }] },
  { model: 'maxim-dehazing-indoor', degradations: [{ name: 'haze (t 0.45-0.75)', make: async (_env, x) => cases.haze(x) }] },
];

/** A node environment whose data folder (and so the converted models) outlives the run. */
function benchEnv(): { env: NodeEnv; close: () => Promise<void> } {
  const dirs = createDataDirs(path.join(os.tmpdir(), 'supir-bench-restore'));
  const runtime = createRuntime({ provider: 'cpu', threads: os.availableParallelism() });
  return { env: { dirs, limits: DEFAULT_LIMITS, models: createModelLibrary(dirs), runtime }, close: () => runtime.close() };
}

export interface RestoreOptions {
  photos?: readonly string[];
  /** Photos for the x4 chains (default: astronaut and rocket). */
  x4Photos?: readonly string[];
  /** Photos for part 2 (default: the first three). */
  modelPhotos?: readonly string[];
  /** Skip part 1 or part 2. */
  parts?: Array<'chains' | 'models'>;
}

export interface RestoreResult {
  chains: ChainRow[];
  models: ModelRow[];
}

export async function measureRestoreQuality(log: (line: string) => void, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const { env, close } = benchEnv();
  const photos = opts.photos ?? cases.PHOTOS;
  const parts = opts.parts ?? ['chains', 'models'];
  const handles = new Map<string, ModelHandle>();
  const model = async (name: string): Promise<ModelHandle> => {
    if (!handles.has(name)) handles.set(name, (await runNode(LoadUpscaleModel, { model_name: name, provider: 'cpu' }, fakeContext(env))).model as ModelHandle);
    return handles.get(name)!;
  };
  const apply = async (name: string, image: ImageTensor): Promise<ImageTensor> =>
    (await runNode(UpscaleImage, { model: await model(name), image, tile_size: 0, overlap: 16, strength: 1 }, fakeContext(env))).image as ImageTensor;
  const result: RestoreResult = { chains: [], models: [] };
  try {
    if (parts.includes('chains')) {
      for (const [i, photo] of photos.entries()) {
        const clean = await cases.cropOf(photo);
        const sigma = 15 + (10 * i) / Math.max(1, photos.length - 1);
        // As a camera makes it: the lens' blur, then the sensor's noise, then JPEG.
        const noisy = await cases.jpeg(env, await cases.gaussianNoise(env, await cases.gaussianBlur(env, clean, 0.8, 200 + i), sigma, 100 + i), 75, 300 + i);
        result.chains.push(await runChains({ photo, degradation: `blur σ0.8, noise σ${sigma.toFixed(0)}, JPEG 75`, at: 'input', input: noisy, clean }, apply, log));
      }
      for (const [i, photo] of (opts.x4Photos ?? ['astronaut.png', 'rocket.jpg']).entries()) {
        const { hr } = await cases.pairOf(photo);
        const light = await cases.degradeLight(env, hr, 400 + i);
        result.chains.push(await runChains({ photo, degradation: 'Degrade light x4', at: 'x4', input: light, clean: hr }, apply, log));
      }
      printChains(result.chains.filter((r) => r.at === 'input'), log);
      printChains(result.chains.filter((r) => r.at === 'x4'), log);
    }
    if (parts.includes('models')) {
      for (const photo of opts.modelPhotos ?? photos.slice(0, 3)) {
        const clean = await cases.cropOf(photo);
        for (const m of MATCHED) {
          for (const [j, d] of m.degradations.entries()) {
            const degraded = await d.make(env, clean, 500 + j);
            const restored = await apply(m.model, degraded);
            const filtered = {} as Record<FilterName, ImageTensor>;
            const filters = {} as Record<FilterName, Score>;
            for (const f of Object.keys(cases.FILTERS) as FilterName[]) {
              filtered[f] = await cases.filter(degraded, f);
              filters[f] = cases.score(filtered[f], clean);
            }
            result.models.push({ model: m.model, degradation: d.name, photo, clean, degraded, restored, input: cases.score(degraded, clean), filters, filtered, restoredScore: cases.score(restored, clean) });
          }
        }
        log(`  ${photo}: ${MATCHED.length} models done`);
      }
      printModels(result.models, log);
    }
  } finally {
    await close();
  }
  return result;
}

async function runChains(
  c: Pick<ChainRow, 'photo' | 'degradation' | 'at' | 'input' | 'clean'>,
  apply: (name: string, image: ImageTensor) => Promise<ImageTensor>,
  log: (line: string) => void,
): Promise<ChainRow> {
  const { input, clean } = c;
  const row: ChainRow = { ...c, outputs: {}, scores: {}, seconds: {}, inputScore: c.at === 'input' ? cases.score(input, clean) : undefined };
  const judge = (out: ImageTensor): Score => (c.at === 'input' ? cases.score(resample(out, clean.w, clean.h, 'area'), clean) : cases.score(out, clean, 4));
  const timed = async (name: ChainName, make: () => Promise<ImageTensor>, before = 0): Promise<ImageTensor> => {
    const t0 = performance.now();
    const out = await make();
    row.outputs[name] = out;
    row.seconds[name] = before + (performance.now() - t0) / 1000;
    row.scores[name] = judge(out);
    return out;
  };
  const bicubic = (x: ImageTensor): ImageTensor => resample(x, x.w * 4, x.h * 4, 'bicubic');
  await timed('bicubic x4', async () => bicubic(input));
  await timed('median 3x3 → bicubic x4', async () => bicubic(await cases.filter(input, 'median 3x3')));
  await timed('ESRGAN x4', () => apply(ESRGAN, input));
  let t0 = performance.now();
  const denoised = await apply('maxim-denoising', input);
  const denoiseS = (performance.now() - t0) / 1000;
  await timed('denoise → bicubic x4', async () => bicubic(denoised), denoiseS);
  await timed('denoise → ESRGAN x4', () => apply(ESRGAN, denoised), denoiseS);
  t0 = performance.now();
  const deblurred = await apply('maxim-deblurring', denoised);
  await timed('denoise → deblur → ESRGAN x4', () => apply(ESRGAN, deblurred), denoiseS + (performance.now() - t0) / 1000);
  log(`  ${c.photo} ${c.degradation} ${input.w}x${input.h}: ${CHAINS.map((name) => row.scores[name]!.psnr.toFixed(2)).join(' / ')} dB`);
  return row;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const pad = (s: string, n: number): string => s.padEnd(n);
const signed = (x: number, digits: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

/** One line per chain: PSNR / SSIM per case, the mean, and the mean seconds per case. */
export function printChains(rows: ChainRow[], log: (line: string) => void): void {
  if (rows.length === 0) return;
  const at = rows[0]!.at;
  const head = rows.map((r) => `${r.photo.replace(/\.\w+$/, '')} ${r.input.w}x${r.input.h}`);
  log(
    at === 'input'
      ? `  chains on 128 px crops degraded at their own size (${rows.map((r) => r.degradation).join(', ')}); each x4 result shrunk back (area), PSNR dB / SSIM against the clean crop:`
      : `  chains at x4 from Degrade (Real-ESRGAN, light preset, x4) of the photo's centre; PSNR dB / SSIM at x4 against the clean centre (4 px border left out):`,
  );
  log(`  ${pad('chain', 30)} ${head.map((h) => pad(h, 17)).join(' ')} ${pad('mean', 14)} s/case`);
  const line = (name: string, pick: (r: ChainRow) => Score, seconds: string): void => {
    const cells = rows.map((r) => pad(`${pick(r).psnr.toFixed(2)}/${pick(r).ssim.toFixed(3)}`, 17));
    log(`  ${pad(name, 30)} ${cells.join(' ')} ${pad(`${mean(rows.map((r) => pick(r).psnr)).toFixed(2)}/${mean(rows.map((r) => pick(r).ssim)).toFixed(3)}`, 14)} ${seconds}`);
  };
  if (at === 'input') line('(degraded input)', (r) => r.inputScore!, '');
  for (const c of CHAINS) line(c, (r) => r.scores[c]!, mean(rows.map((r) => r.seconds[c]!)).toFixed(1));
  const best = [...CHAINS].sort((a, b) => mean(rows.map((r) => r.scores[b]!.psnr)) - mean(rows.map((r) => r.scores[a]!.psnr)))[0]!;
  log(`  best mean PSNR: ${best}`);
}

/** One line per model and degradation, the means over the photos: input, then gains. */
export function printModels(rows: ModelRow[], log: (line: string) => void): void {
  const filters = Object.keys(cases.FILTERS) as FilterName[];
  const groups = new Map<string, ModelRow[]>();
  for (const r of rows) groups.set(`${r.model}|${r.degradation}`, [...(groups.get(`${r.model}|${r.degradation}`) ?? []), r]);
  const photos = [...new Set(rows.map((r) => r.photo))].length;
  log(`  x1 restoration, 128x128 crops of ${photos} photos: the degraded input's PSNR dB / SSIM, then each method's gain over it (mean over the photos)`);
  log(`  ${pad('model', 24)} ${pad('degradation', 22)} ${pad('input', 13)} ${filters.map((f) => pad(f, 13)).join(' ')} model`);
  for (const [key, g] of groups) {
    const [modelName, degradation] = key.split('|') as [string, string];
    const input = `${mean(g.map((r) => r.input.psnr)).toFixed(2)}/${mean(g.map((r) => r.input.ssim)).toFixed(3)}`;
    const gain = (pick: (r: ModelRow) => Score): string =>
      `${signed(mean(g.map((r) => pick(r).psnr - r.input.psnr)), 2)}/${signed(mean(g.map((r) => pick(r).ssim - r.input.ssim)), 3)}`;
    log(`  ${pad(modelName, 24)} ${pad(degradation, 22)} ${pad(input, 13)} ${filters.map((f) => pad(gain((r) => r.filters[f]), 13)).join(' ')} ${gain((r) => r.restoredScore)}`);
  }
  log('  not measured: maxim-deraining and maxim-retouching (no clean synthetic counterpart of rain streaks or of a retoucher\'s edit here)');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await measureRestoreQuality((line) => process.stdout.write(`${line}\n`));
}
