/**
 * Upscale Image cuts its work into model runs short enough for Stop: each run's multiply-adds
 * (read from the model's graph) stay under RUN_MACS whatever tile the widget asks for, tiles are
 * blended in as they arrive, and after an interrupt no further run starts.
 */
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError } from '../../nodes/api/errors.ts';
import type { ModelHandle } from '../../nodes/api/sockets.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import { extractTile, extractTiles, mergeTiles, planTiles, TileBlender } from '../../nodes/api/tiling.ts';
import { hwcUint8ToImage } from '../../nodes/image/codec.ts';
import LoadUpscaleModel from '../../nodes/upscale/load-model.ts';
import { macsPerInputPixel, modelMacsPerInputPixel } from '../../nodes/upscale/model-cost.ts';
import UpscaleImage, { evenTile, RUN_MACS, runTileSize } from '../../nodes/upscale/upscale-image.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { findShippedModel } from '../../server/models/tfjs/shipped.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { imageFrom } from '../support/images.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { recording } from '../support/recording-runtime.ts';

const PHOTO = path.resolve(import.meta.dirname, '../../assets/inputs/astronaut.png');

async function photo(side: number): Promise<ImageTensor> {
  const { data, info } = await sharp(PHOTO).resize(side, side).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return hwcUint8ToImage(new Uint8Array(data), info.width, info.height, info.channels);
}

describe('model cost', () => {
  it('counts each weighted op at the resolution it runs at', () => {
    const g = new GraphBuilder({ name: 'cost' });
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    const w1 = g.initializer('w1', new Float32Array(8 * 3 * 3 * 3).fill(0.1), [8, 3, 3, 3]); // 216 per pixel at 1x
    const a = g.op('Conv', [x, w1], { pads: [1, 1, 1, 1] });
    const w2 = g.initializer('w2', new Float32Array(8 * 8 * 3 * 3).fill(0.2), [8, 8, 3, 3]); // 576 at 1/2
    const b = g.op('Conv', [a, w2], { pads: [1, 1, 1, 1], strides: [2, 2] });
    const c = g.op('DepthToSpace', [b], { blocksize: 2 }); // back to 1x, 2 channels
    const scales = g.constant(Float32Array.of(1, 1, 4, 4), [4]);
    const d = g.op('Resize', [c, null, scales], { mode: 'nearest' }); // 4x
    const w3 = g.initializer('w3', new Float32Array(3 * 2 * 3 * 3).fill(0.3), [3, 2, 3, 3]); // 54 at 4x
    const e = g.op('Conv', [d, w3], { pads: [1, 1, 1, 1] });
    const w4 = g.initializer('w4', new Float32Array(3 * 3 * 2 * 2).fill(0.4), [3, 3, 2, 2]); // 36 per input pixel at 4x, out 8x
    g.output(g.op('ConvTranspose', [e, w4], { strides: [2, 2] }), 'y', 'float32', [1, 3, 'H', 'W']);
    expect(macsPerInputPixel(g.toBytes())).toBeCloseTo(216 + 576 / 4 + 54 * 16 + 36 * 16, 6);
  });

  describe('with the shipped models', () => {
    const { env, cleanup } = tempEnv();
    beforeAll(() => {
      env.models = createModelLibrary(env.dirs);
    });
    afterAll(() => cleanup());

    it.each(['esrgan-slim x2', 'esrgan-medium x3', 'esrgan-medium x4', 'esrgan-thick x8'])(
      '%s: equals the multiply-adds counted from its TensorFlow.js layers',
      async (name) => {
        const resolved = await env.models!.resolve(name);
        const entry = findShippedModel(name);
        const table = entry.macsPerOutputPixel * entry.scale ** 2;
        expect(Math.abs(modelMacsPerInputPixel(resolved.path, resolved.hash) - table) / table).toBeLessThan(1e-5);
      },
      60_000,
    );
  });

  it('sizes runs by cost: within RUN_MACS, never below 64 px, never above the tile asked for', () => {
    const medium = findShippedModel('esrgan-medium x4');
    const macs = medium.macsPerOutputPixel * 16;
    const side = runTileSize({ tileSize: 0, scale: 4, macsPerInputPixel: macs });
    expect(side * side * macs).toBeLessThanOrEqual(RUN_MACS);
    expect((side + 8) ** 2 * macs).toBeGreaterThan(RUN_MACS);
    expect(runTileSize({ tileSize: 1024, scale: 4, macsPerInputPixel: macs })).toBe(side);
    expect(runTileSize({ tileSize: 96, scale: 4, macsPerInputPixel: macs })).toBe(96);
    const thick = findShippedModel('esrgan-thick x8');
    expect(runTileSize({ tileSize: 0, scale: 8, macsPerInputPixel: thick.macsPerOutputPixel * 64 })).toBe(64);
  });
});

describe('TileBlender', () => {
  it('blending tiles one at a time gives exactly what mergeTiles gives', () => {
    const image = imageFrom(2, 3, 70, 100, (n, c, y, x) => 0.5 + 0.5 * Math.sin(x * 0.3 + y * 0.17 * (c + 1) + n));
    const plan = planTiles(100, 70, { tile: 32, overlap: 8 });
    const merged = mergeTiles(extractTiles(image, plan), plan, 1);
    const blender = new TileBlender(plan, 1, 3);
    for (let item = 0; item < 2; item++) {
      const target = blender.target();
      plan.tiles.forEach((_, i) => blender.add(target, i, extractTile(image, plan, i, item).data));
      blender.normalise(target);
      const size = 3 * 70 * 100;
      expect(Array.from(target)).toEqual(Array.from(merged.data.subarray(item * size, (item + 1) * size)));
    }
  });
});

describe('evenTile', () => {
  it('splits a side evenly over as many tiles as the cap needs, never above the cap', () => {
    expect(evenTile(248, 256, 256, 16)).toBe(136);
    expect(evenTile(248, 200, 120, 16)).toBe(200);
    for (const [cap, w, h] of [[144, 1024, 1024], [64, 1411, 900], [248, 256, 90], [96, 97, 97]] as const) {
      const tile = evenTile(cap, w, h, 16);
      expect(tile).toBeLessThanOrEqual(cap);
      const ov = Math.min(16, Math.floor(cap / 2));
      const count = (t: number) => planTiles(w, h, { tile: t, overlap: Math.min(ov, Math.floor(t / 2)) }).tiles.length;
      expect(count(tile), `${w}x${h} under ${cap}`).toBe(count(cap));
    }
  });
});

describe('Upscale Image runs', () => {
  const { env, cleanup } = tempEnv();
  let runtime: StudioRuntime;
  let model: ModelHandle;
  beforeAll(async () => {
    runtime = createRuntime({ provider: 'cpu', threads: 2 });
    env.models = createModelLibrary(env.dirs);
    env.runtime = runtime;
    model = (await runNode(LoadUpscaleModel, { model_name: 'esrgan-medium x4', provider: 'cpu' }, fakeContext(env))).model as ModelHandle;
  }, 60_000);
  afterAll(async () => {
    await runtime.close();
    cleanup();
  });

  it('a 1024 px photo set to one tile runs in pieces of at most RUN_MACS, and Stop starts no further run', async () => {
    const image = await photo(1024);
    const rec = recording(runtime);
    const macs = modelMacsPerInputPixel(model.id, model.hash);
    const ctx = fakeContext({ ...env, runtime: rec.runtime });
    const progress = ctx.progress.bind(ctx);
    let reports = 0;
    // Stop after the third tile, as a person pressing Stop while the node runs.
    ctx.progress = (value, max) => {
      progress(value, max);
      if (++reports === 3) {
        rec.aborted.at = true;
        ctx.abort();
      }
    };
    await expect(runNode(UpscaleImage, { model, image, tile_size: 1024, overlap: 16 }, ctx)).rejects.toBeInstanceOf(InterruptedError);
    const plan = planTiles(1024, 1024, { tile: runTileSize({ tileSize: 1024, scale: 4, macsPerInputPixel: macs }), overlap: 16 });
    expect(plan.tiles.length).toBeGreaterThanOrEqual(16);
    expect(ctx.progressCalls).toEqual([1, 2, 3].map((v) => [v, plan.tiles.length]));
    for (const run of rec.runs) expect(run.dims[2]! * run.dims[3]! * macs).toBeLessThanOrEqual(RUN_MACS);
    // The work done after Stop: none (the run in flight had ended; the next one never started).
    expect(rec.runs.filter((r) => r.afterAbort)).toEqual([]);
    expect(rec.runs).toHaveLength(3);
  }, 120_000);

  it('Stop while a run is queued behind another skips it', async () => {
    const image = await photo(256);
    const ctx = fakeContext(env);
    const session = await runtime.load(model.id, { provider: 'cpu' });
    // Another run holds the session; the node's first run waits behind it and is dropped on Stop.
    const busy = session.run({ [session.inputs[0]!.name]: { data: new Float32Array(3 * 200 * 200), dims: [1, 3, 200, 200] } });
    const node = runNode(UpscaleImage, { model, image, tile_size: 0, overlap: 16 }, ctx);
    ctx.abort();
    await expect(node).rejects.toBeInstanceOf(InterruptedError);
    await busy;
    expect(ctx.progressCalls).toEqual([]);
  }, 60_000);
});
