/**
 * x4 upscaling with each shipped model family on 128x128 and 256x256 crops of a photo: this
 * runtime (ONNX, untiled and tiled) against the same model in TensorFlow.js (wasm), in the same
 * process. Achieved GFLOP/s = multiply-adds per output pixel x 2 x output pixels / time, against
 * the CPU's FMA peak (SUPIR_PEAK_GFLOPS_PER_CORE, default 205: measured on the development
 * machines, see ../shared/docs/dependencies.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { ModelHandle } from '../nodes/api/sockets.ts';
import { hwcUint8ToImage } from '../nodes/image/codec.ts';
import UpscaleImage from '../nodes/upscale/upscale-image.ts';
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type NodeEnv } from '../nodes/api/env.ts';
import { createModelLibrary } from '../server/models/library.ts';
import { findShippedModel, shippedModelJsonPath } from '../server/models/tfjs/index.ts';
import { createRuntime } from '../server/runtime/index.ts';
import { fakeContext, runNode } from '../test/support/fake-context.ts';
import { loadTfjs, loadTfjsModel, packageDefinition, runTfjs } from '../test/support/tfjs-reference.ts';

const MODELS = ['esrgan-slim x4', 'esrgan-medium x4', 'esrgan-thick x4'];
/** SUPIR_BENCH_TFJS=0 skips the TF.js reference (a minute on 2 cores, mostly thick at 256 px). */
const WITH_TFJS = process.env.SUPIR_BENCH_TFJS !== '0';
const SIZES = [128, 256];
const ROUNDS = 5;
const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');

export interface UpscaleRow {
  model: string;
  size: number;
  path: 'onnx' | 'onnx tiled' | 'tfjs';
  ms: number;
  mpPerS: number;
  gflops: number;
  peakShare: number;
}

async function crop(size: number) {
  const { data, info } = await sharp(PHOTO).extract({ left: 96, top: 48, width: size, height: size }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return hwcUint8ToImage(new Uint8Array(data), info.width, info.height, 3);
}

async function median(fn: () => Promise<unknown>, rounds: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

export async function measureUpscale(log: (line: string) => void): Promise<UpscaleRow[]> {
  const runtime = createRuntime({ provider: 'cpu' });
  const dirs = createDataDirs(fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-up-')));
  const env: NodeEnv = { dirs, limits: DEFAULT_LIMITS, runtime, models: createModelLibrary(dirs) };
  const peak = Number(process.env.SUPIR_PEAK_GFLOPS_PER_CORE ?? 205) * runtime.threads;
  const { tf, note } = await loadTfjs('wasm');
  log(`ONNX: onnxruntime-node CPU, ${runtime.threads} threads; TF.js: ${note}; peak ${peak} GFLOP/s`);
  const rows: UpscaleRow[] = [];
  try {
    for (const name of MODELS) {
      const resolved = await env.models!.resolve(name);
      const model: ModelHandle = { kind: 'upscale', id: resolved.path, hash: resolved.hash, name, scale: 4, provider: 'cpu' };
      const entry = findShippedModel(name);
      const def = packageDefinition(entry.package, entry.scale);
      const tfModel = await loadTfjsModel(tf, shippedModelJsonPath(entry), def);
      for (const size of SIZES) {
        const image = await crop(size);
        const flop = entry.macsPerOutputPixel * 2 * (size * 4) ** 2;
        const row = (p: UpscaleRow['path'], ms: number): UpscaleRow => {
          const gflops = flop / ms / 1e6;
          const r = { model: name, size, path: p, ms, mpPerS: (size * 4) ** 2 / ms / 1e3, gflops, peakShare: gflops / peak };
          log(`  ${name.padEnd(17)} ${String(size).padStart(3)}px ${p.padEnd(10)} ${ms.toFixed(1).padStart(8)} ms  ${r.mpPerS.toFixed(2).padStart(6)} MP/s  ${gflops.toFixed(1).padStart(6)} GFLOP/s  ${(r.peakShare * 100).toFixed(0).padStart(3)} % of peak`);
          rows.push(r);
          return r;
        };
        const untiled = row('onnx', await median(() => runNode(UpscaleImage, { model, image, tile_size: size, overlap: 16 }, fakeContext(env)), ROUNDS));
        // 2x2 tiles overlapping by 16 px: the smallest tiling that still blends seams.
        row('onnx tiled', await median(() => runNode(UpscaleImage, { model, image, tile_size: size / 2 + 8, overlap: 16 }, fakeContext(env)), ROUNDS));
        if (!WITH_TFJS) continue;
        const tfRounds = entry.macsPerOutputPixel > 100_000 && size > 128 ? 1 : 2;
        const reference = row('tfjs', await median(async () => runTfjs(tf, tfModel, def, image.data, size, size), tfRounds));
        log(`    ONNX is ${(reference.ms / untiled.ms).toFixed(1)}x as fast as TF.js`);
      }
      tfModel.dispose();
    }
  } finally {
    await runtime.close();
  }
  return rows;
}
