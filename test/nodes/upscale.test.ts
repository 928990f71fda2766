import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../nodes/api/env.ts';
import type { ModelHandle } from '../../nodes/api/sockets.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import { planTiles } from '../../nodes/api/tiling.ts';
import { hwcUint8ToImage } from '../../nodes/image/codec.ts';
import MergeTiles from '../../nodes/tile/merge-tiles.ts';
import TileImage from '../../nodes/tile/tile-image.ts';
import LoadUpscaleModel from '../../nodes/upscale/load-model.ts';
import UpscaleImage from '../../nodes/upscale/upscale-image.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

const PHOTO = path.resolve(import.meta.dirname, '../../assets/inputs/astronaut.png');

async function photoCrop(size: number): Promise<ImageTensor> {
  const { data, info } = await sharp(PHOTO).extract({ left: 128, top: 64, width: size, height: size }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return hwcUint8ToImage(new Uint8Array(data), info.width, info.height, info.channels);
}

describe('upscale nodes', () => {
  const { env, cleanup } = tempEnv();
  let runtime: StudioRuntime;
  beforeAll(() => {
    runtime = createRuntime({ provider: 'cpu' });
    env.runtime = runtime;
    env.models = createModelLibrary(env.dirs);
  });
  afterAll(async () => {
    await runtime.close();
    cleanup();
  });

  const load = async (name: string): Promise<ModelHandle> =>
    (await runNode(LoadUpscaleModel, { model_name: name, provider: 'auto' }, fakeContext(env))).model as ModelHandle;

  it('lists the shipped models and the user models of the models folder', () => {
    const names = env.models!.list('upscale').map((m) => m.name);
    expect(names).toContain('esrgan-slim x2');
    expect(names).toContain('esrgan-thick x8');
    fs.writeFileSync(path.join(env.dirs.folders.models, 'my-4x-model.onnx'), 'x');
    expect(env.models!.list('upscale').find((m) => m.name === 'my-4x-model.onnx')).toMatchObject({ source: 'user', scale: 4 });
    fs.rmSync(path.join(env.dirs.folders.models, 'my-4x-model.onnx'));
  });

  it('tiled output matches untiled within 2/255, also along the tile borders', async () => {
    const model = await load('esrgan-slim x4');
    expect(model).toMatchObject({ kind: 'upscale', scale: 4, name: 'esrgan-slim x4' });
    const image = await photoCrop(256);
    // Untiled: the model on the whole crop in one run (the node would cut it into runs of RUN_MACS).
    const session = await runtime.load(model.id, { provider: 'cpu' });
    const output = (await session.run({ [session.inputs[0]!.name]: { data: image.data, dims: [1, 3, 256, 256] } }))[session.outputs[0]!.name]!;
    const whole: ImageTensor = { data: output.data, n: 1, c: 3, h: 1024, w: 1024 };
    const tiledCtx = fakeContext(env);
    const tiled = (await runNode(UpscaleImage, { model, image, tile_size: 96, overlap: 16 }, tiledCtx)).image as ImageTensor;
    expect([tiled.n, tiled.c, tiled.h, tiled.w]).toEqual([1, 3, 1024, 1024]);
    let max = 0;
    for (let i = 0; i < whole.data.length; i++) max = Math.max(max, Math.abs(whole.data[i]! - tiled.data[i]!));
    expect(max).toBeLessThanOrEqual(2 / 255);
    // Seams would show where one tile ends: compare the rows and columns at every tile edge.
    const plan = planTiles(256, 256, { tile: 96, overlap: 16 });
    const edges = new Set(plan.tiles.flatMap((t) => [t.x * 4, (t.x + t.w) * 4 - 1]).filter((x) => x > 0 && x < 1023));
    let border = 0;
    for (let ch = 0; ch < 3; ch++) {
      for (const x of edges) {
        for (let y = 0; y < 1024; y++) {
          const i = ch * 1024 * 1024 + y * 1024 + x;
          border = Math.max(border, Math.abs(whole.data[i]! - tiled.data[i]!));
        }
      }
    }
    expect(edges.size).toBeGreaterThan(2);
    expect(border).toBeLessThanOrEqual(2 / 255);
    // One progress step per tile.
    expect(tiledCtx.progressCalls.at(-1)).toEqual([plan.tiles.length, plan.tiles.length]);
  });

  it('actually restores detail: x2 of a downscaled photo beats bicubic enlargement against the original', async () => {
    const model = await load('esrgan-medium x2');
    const original = await photoCrop(128);
    const { data, info } = await sharp(PHOTO).extract({ left: 128, top: 64, width: 128, height: 128 }).resize(64, 64, { kernel: 'cubic' }).raw().toBuffer({ resolveWithObject: true });
    const small = hwcUint8ToImage(new Uint8Array(data), info.width, info.height, info.channels);
    const up = (await runNode(UpscaleImage, { model, image: small, tile_size: 0, overlap: 16 }, fakeContext(env))).image as ImageTensor;
    const bicubic = await sharp(data, { raw: { width: 64, height: 64, channels: 3 } }).resize(128, 128, { kernel: 'cubic' }).raw().toBuffer();
    const mse = (a: (i: number) => number): number => {
      let s = 0;
      for (let i = 0; i < original.data.length; i++) s += (a(i) - original.data[i]!) ** 2;
      return s / original.data.length;
    };
    const hw = 128 * 128;
    const bicubicAt = (i: number): number => bicubic[(i % hw) * 3 + Math.floor(i / hw)]! / 255;
    expect(mse((i) => up.data[i]!)).toBeLessThan(mse(bicubicAt));
  });

  it('refuses a model that does not take images, naming the model input', async () => {
    const g = new GraphBuilder({ name: 'not-an-upscaler' });
    const x = g.input('x', 'float32', [1, 1, 'h', 'w']);
    g.output(g.op('Identity', [x]), 'y', 'float32', [1, 1, 'h', 'w']);
    fs.writeFileSync(path.join(env.dirs.folders.models, 'gray-x2.onnx'), g.toBytes());
    const model = await load('gray-x2.onnx');
    const image = await photoCrop(16);
    await expect(runNode(UpscaleImage, { model, image, tile_size: 0, overlap: 4 }, fakeContext(env))).rejects.toMatchObject({
      input: 'model',
      message: expect.stringMatching(/does not take one Nx3xHxW image/),
    });
  });

  it('turns a corrupt model file into an error on the loader', async () => {
    fs.writeFileSync(path.join(env.dirs.folders.models, 'broken.onnx'), 'this is not a protobuf');
    await expect(load('broken.onnx')).rejects.toMatchObject({ input: 'model_name' });
    await expect(load('missing.onnx')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses an output over the pixel limit before running anything', async () => {
    const model = await load('esrgan-slim x4');
    const small = { ...env, limits: { ...DEFAULT_LIMITS, maxPixels: 100_000 } };
    await expect(runNode(UpscaleImage, { model, image: await photoCrop(128), tile_size: 0, overlap: 16 }, fakeContext(small))).rejects.toMatchObject({
      input: 'image',
      code: 'TOO_LARGE',
    });
  });

  it('Tile Image and Merge Tiles round-trip an image exactly', async () => {
    const image = await photoCrop(100);
    const { tiles, plan } = (await runNode(TileImage, { image, tile_size: 48, overlap: 8 }, fakeContext(env))) as { tiles: ImageTensor; plan: ReturnType<typeof planTiles> };
    expect(tiles.n).toBe(plan.tiles.length);
    const merged = (await runNode(MergeTiles, { tiles, plan }, fakeContext(env))).image as ImageTensor;
    let max = 0;
    for (let i = 0; i < image.data.length; i++) max = Math.max(max, Math.abs(image.data[i]! - merged.data[i]!));
    expect(max).toBeLessThan(1e-6);
  });
});
