/**
 * Tiled VAE (nodes/supir/lib/vae-tiles.ts) on the tiny pack: the blend is exact where the graph
 * is (a stand-in runner), and the tiled Stage-1 / Encode / Decode stay within a measured bound of
 * the untiled result. The bound is loose because each tile normalises with its own GroupNorm
 * statistics and attends only within itself (the official tilevae.py shares the statistics);
 * GOLDEN_REPORT=1 prints the measured differences.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { ModelHandle } from '../../nodes/api/sockets.ts';
import type { ImageTensor, LatentTensor } from '../../nodes/api/tensor.ts';
import SupirDecode from '../../nodes/supir/decode.ts';
import SupirEncode from '../../nodes/supir/encode.ts';
import { tileGrid, tiledRunner } from '../../nodes/supir/lib/vae-tiles.ts';
import LoadSupirModel from '../../nodes/supir/load-model.ts';
import SupirStage1 from '../../nodes/supir/stage1.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { maxAbsDiff } from '../support/close.ts';

const measured: Record<string, number> = {};
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-tiles-ckpt-'));
let env: NodeEnv;
let cleanup: () => void;
let runtime: StudioRuntime;
let model: ModelHandle;

/** A smooth 128x96 test picture (gradients and soft blobs), like a photo rather than noise. */
function picture(w = 128, h = 96): ImageTensor {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const blob = Math.exp(-((x - 40 - 20 * c) ** 2 + (y - 50) ** 2) / 400);
        data[c * h * w + y * w + x] = 0.2 + 0.4 * (x / w) * (1 - y / h) + 0.35 * blob + 0.05 * Math.sin(x / 3 + c);
      }
    }
  }
  return { n: 1, c: 3, h, w, data };
}

beforeAll(async () => {
  ({ env, cleanup } = tempEnv());
  const files = await writeTinyCheckpoints(GOLDEN_DIR, scratch);
  await convertToPack({ ...files, out: path.join(env.dirs.folders.models, 'tiny'), ...TINY_COMPILE_OPTIONS });
  runtime = createRuntime({ provider: 'cpu', threads: 2 });
  env.runtime = runtime;
  model = (await runNode(LoadSupirModel, { pack: 'tiny', provider: 'cpu' }, fakeContext(env))).model as ModelHandle;
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  cleanup?.();
  fs.rmSync(scratch, { recursive: true, force: true });
  if (process.env.GOLDEN_REPORT) process.stderr.write(`tiled vs untiled max |diff|: ${JSON.stringify(measured, null, 1)}\n`);
});

describe('tiled VAE', () => {
  it('blends tiles back exactly for a position-independent graph, and leaves small inputs untiled', async () => {
    // A stand-in "decoder": each latent cell becomes a 2x2 block of its value (downscale 2).
    let calls = 0;
    const upsample = {
      async run(feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }>) {
        calls++;
        const t = feeds['latent']!;
        const [n, c, h, w] = t.dims as [number, number, number, number];
        const out = new Float32Array(n * c * h * w * 4);
        for (let p = 0; p < n * c; p++) for (let y = 0; y < 2 * h; y++) for (let x = 0; x < 2 * w; x++) out[p * 4 * h * w + y * 2 * w + x] = Number(t.data[p * h * w + (y >> 1) * w + (x >> 1)]);
        return { image: { data: out, dims: [n, c, 2 * h, 2 * w] } };
      },
    };
    const latent = { data: Float32Array.from({ length: 2 * 4 * 24 * 40 }, (_, i) => Math.sin(i)), dims: [2, 4, 24, 40] };
    const whole = (await upsample.run({ latent })).image;
    calls = 0;
    const tiled = (await tiledRunner(upsample, tileGrid(32, 'decoder', 2)).run({ latent })).image!;
    expect(calls).toBeGreaterThan(2);
    expect(tiled.dims).toEqual(whole.dims);
    expect(maxAbsDiff(tiled.data, whole.data)).toBeLessThan(1e-6);
    calls = 0;
    await tiledRunner(upsample, tileGrid(128, 'decoder', 2)).run({ latent });
    expect(calls).toBe(1);
    expect(tileGrid(0, 'encoder', 8)).toBeNull();
  });

  it('Stage-1, Encode and Decode stay close to the untiled result', async () => {
    const image = picture();
    const ctx = () => fakeContext(env);
    const stage = async (tile_size: number) => runNode(SupirStage1, { model, image, tile_size }, ctx());
    const [whole, tiled] = [await stage(0), await stage(64)];
    const zw = whole.control as LatentTensor;
    const zt = tiled.control as LatentTensor;
    measured['stage1 _z'] = maxAbsDiff(zt.data, zw.data);
    measured['stage1 image'] = maxAbsDiff((tiled.image as ImageTensor).data, (whole.image as ImageTensor).data);
    const enc = async (tile_size: number) => (await runNode(SupirEncode, { model, image, seed: 3, tile_size }, ctx())).latent as LatentTensor;
    measured['encode latent'] = maxAbsDiff((await enc(64)).data, (await enc(0)).data);
    const dec = async (tile_size: number) => (await runNode(SupirDecode, { model, latent: zw, clamp: false, tile_size }, ctx())).image as ImageTensor;
    measured['decode image'] = maxAbsDiff((await dec(64)).data, (await dec(0)).data);
    const range = (t: Float32Array) => Math.max(...t) - Math.min(...t);
    measured['(range of _z)'] = range(zw.data);
    measured['(range of stage-1 image)'] = range((whole.image as ImageTensor).data);
    // Regression guards at ~1.2x what was measured (0.64, 2.29, 0.43, 2.57 against ranges 1.08 and
    // 4.46): on these random weights per-tile normalisation moves values by half their range, which
    // is why tiling is off by default. The real SDXL VAE is far smoother, but unmeasured here.
    expect(measured['stage1 _z']).toBeLessThan(0.8);
    expect(measured['stage1 image']).toBeLessThan(2.8);
    expect(measured['encode latent']).toBeLessThan(0.55);
    expect(measured['decode image']).toBeLessThan(3.1);
  });
});
