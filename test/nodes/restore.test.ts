/**
 * MAXIM through the Restore Image (model) node: the model is opened for one square tile size (128 px
 * on the CPU), images smaller than a tile are mirrored up to it and cropped back, every run gets
 * exactly that size, another tile_size converts the model once more, strength mixes with the
 * input, and the denoiser really removes noise from a photo.
 */
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelHandle } from '../../nodes/api/sockets.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { hwcUint8ToImage } from '../../nodes/image/codec.ts';
import { psnr, toPlanes8 } from '../../nodes/compare/lib/metrics.ts';
import LoadUpscaleModel, { FIXED_TILE } from '../../nodes/upscale/load-model.ts';
import UpscaleImage, { padReflect } from '../../nodes/upscale/upscale-image.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { maxAbsDiff } from '../support/close.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { recording } from '../support/recording-runtime.ts';

const PHOTO = path.resolve(import.meta.dirname, '../../assets/inputs/astronaut.png');

async function photo(w: number, h: number, left = 0, top = 0): Promise<ImageTensor> {
  const { data, info } = await sharp(PHOTO).extract({ left, top, width: w, height: h }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return hwcUint8ToImage(new Uint8Array(data), info.width, info.height, info.channels);
}

/** Seeded Gaussian noise (Box-Muller over a Park-Miller stream), clipped to 0..1. */
function noisy(image: ImageTensor, sigma: number, seed = 11): ImageTensor {
  let s = seed;
  const u = (): number => ((s = (s * 16807) % 2147483647), s / 2147483647);
  const out = createImage(image.n, image.c, image.h, image.w, image.data.slice());
  for (let i = 0; i < out.data.length; i++) {
    const g = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    out.data[i] = Math.min(1, Math.max(0, out.data[i]! + sigma * g));
  }
  return out;
}

describe('padReflect', () => {
  it('mirrors without repeating the edge and leaves the tile in the top-left corner', () => {
    const tile = createImage(1, 1, 2, 3, Float32Array.from([1, 2, 3, 4, 5, 6]));
    const out = padReflect(tile, 5);
    expect(Array.from(out.data)).toEqual([1, 2, 3, 2, 1, 4, 5, 6, 5, 4, 1, 2, 3, 2, 1, 4, 5, 6, 5, 4, 1, 2, 3, 2, 1]);
    expect(padReflect(tile, 3 as number)).not.toBe(tile);
    expect(() => padReflect(tile, 2)).toThrow(/does not fit/);
  });
});

describe('MAXIM in Restore Image (model)', () => {
  const { env, cleanup } = tempEnv();
  let runtime: StudioRuntime;
  let enhance: ModelHandle;
  beforeAll(async () => {
    runtime = createRuntime({ provider: 'cpu', threads: 2 });
    env.models = createModelLibrary(env.dirs);
    env.runtime = runtime;
    enhance = (await runNode(LoadUpscaleModel, { model_name: 'maxim-enhancement', provider: 'cpu' }, fakeContext(env))).model as ModelHandle;
  }, 120_000);
  afterAll(async () => {
    await runtime.close();
    cleanup();
  });

  it('opens the model for the CPU tile size, at x1', () => {
    expect(enhance).toMatchObject({ kind: 'upscale', scale: 1, tile: FIXED_TILE.cpu, tileMultiple: 64, name: 'maxim-enhancement' });
    expect(env.models!.list('upscale').filter((m) => m.tileMultiple === 64)).toHaveLength(7);
  });

  it('an image smaller than the tile is mirrored up to it and cropped back: the same as running the model by hand', async () => {
    const image = await photo(100, 70, 200, 120);
    const rec = recording(runtime);
    const out = (await runNode(UpscaleImage, { model: enhance, image, tile_size: 0, overlap: 16, strength: 1 }, fakeContext({ ...env, runtime: rec.runtime }))).image as ImageTensor;
    expect([out.n, out.c, out.h, out.w]).toEqual([1, 3, 70, 100]);
    expect(rec.runs.map((r) => r.dims)).toEqual([[1, 3, 128, 128]]);
    const session = await runtime.load(enhance.id, { provider: 'cpu' });
    const padded = padReflect(image, 128);
    const full = (await session.run({ input: { data: padded.data, dims: [1, 3, 128, 128] } })).output!.data;
    const crop = new Float32Array(3 * 70 * 100);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 70; y++) crop.set(full.subarray((c * 128 + y) * 128, (c * 128 + y) * 128 + 100), (c * 70 + y) * 100);
    expect(maxAbsDiff(out.data, crop)).toBeLessThan(1e-6);
    // It did something: a low-light model brightens.
    expect(out.data.reduce((a, v) => a + v, 0)).toBeGreaterThan(image.data.reduce((a, v) => a + v, 0) * 1.05);
  }, 120_000);

  it('every run of a larger image is one full tile; strength 0 gives the input back and 0.5 the midpoint', async () => {
    const image = await photo(200, 150, 150, 100);
    const rec = recording(runtime);
    const ctx = fakeContext({ ...env, runtime: rec.runtime });
    const full = (await runNode(UpscaleImage, { model: enhance, image, tile_size: 0, overlap: 16, strength: 1 }, ctx)).image as ImageTensor;
    expect(rec.runs.map((r) => r.dims)).toEqual(Array(4).fill([1, 3, 128, 128]));
    expect(ctx.progressCalls.at(-1)).toEqual([4, 4]);
    const none = (await runNode(UpscaleImage, { model: enhance, image, tile_size: 0, overlap: 16, strength: 0 }, fakeContext(env))).image as ImageTensor;
    expect(maxAbsDiff(none.data, image.data)).toBe(0);
    const half = (await runNode(UpscaleImage, { model: enhance, image, tile_size: 0, overlap: 16, strength: 0.5 }, fakeContext(env))).image as ImageTensor;
    const mid = full.data.map((v, i) => (v + image.data[i]!) / 2);
    expect(maxAbsDiff(half.data, mid)).toBeLessThan(1e-6);
  }, 180_000);

  it('tile_size 100 rounds up to 128 (the open file); 64 converts the model for 64 px tiles', async () => {
    const image = await photo(96, 96, 300, 300);
    const rec = recording(runtime);
    await runNode(UpscaleImage, { model: enhance, image, tile_size: 100, overlap: 16, strength: 1 }, fakeContext({ ...env, runtime: rec.runtime }));
    await runNode(UpscaleImage, { model: enhance, image, tile_size: 64, overlap: 16, strength: 1 }, fakeContext({ ...env, runtime: rec.runtime }));
    expect(rec.runs.map((r) => r.dims)[0]).toEqual([1, 3, 128, 128]);
    expect(rec.runs.map((r) => r.dims).slice(1)).toEqual(Array(4).fill([1, 3, 64, 64]));
  }, 180_000);

  it('maxim-denoising removes Gaussian noise (σ 25/255) from a photo: PSNR up by more than 4 dB', async () => {
    const denoise = (await runNode(LoadUpscaleModel, { model_name: 'maxim-denoising', provider: 'cpu' }, fakeContext(env))).model as ModelHandle;
    const clean = await photo(128, 128, 180, 60);
    const input = noisy(clean, 25 / 255);
    const out = (await runNode(UpscaleImage, { model: denoise, image: input, tile_size: 0, overlap: 16, strength: 1 }, fakeContext(env))).image as ImageTensor;
    const before = psnr(toPlanes8(input), toPlanes8(clean));
    const after = psnr(toPlanes8(out), toPlanes8(clean));
    expect(after - before, `PSNR ${before.toFixed(2)} → ${after.toFixed(2)} dB`).toBeGreaterThan(4);
  }, 180_000);
});
