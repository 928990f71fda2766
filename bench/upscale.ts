/**
 * x4 upscaling with each shipped model family on 128x128 and 256x256 crops of a photo: this
 * runtime (ONNX, untiled and tiled) against the same model in TensorFlow.js (wasm), in the same
 * process. Achieved GFLOP/s = multiply-adds per output pixel x 2 x output pixels / time.
 *
 * The share is of a peak measured in the same run, not of a datasheet figure: the GFLOP/s that
 * onnxruntime's own CPU MatMul (MLAS sgemm) reaches on this machine with the runtime's thread
 * count (512^3 and 1024^3 float32 products, best run), measured right before and right after each
 * row, so that load on a shared machine weighs on both sides alike (createPeakMeter). It is the
 * achievable peak of the library the models run on: the same FMA kernels and threads, nothing
 * else in the way. A hand-written WebAssembly SIMD loop would not do: wasm has 128-bit vectors
 * and no fused multiply-add, a quarter of what MLAS's AVX2/AVX-512 kernels do per cycle.
 *
 * `npx tsx bench/upscale.ts` runs it alone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { ModelHandle } from '../nodes/api/sockets.ts';
import { hwcUint8ToImage } from '../nodes/image/codec.ts';
import UpscaleImage from '../nodes/upscale/upscale-image.ts';
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type NodeEnv } from '../nodes/api/env.ts';
import { createModelLibrary } from '../server/models/library.ts';
import { GraphBuilder } from '../server/models/onnx/builder.ts';
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
  /** The MatMul peak measured around this row (GFLOP/s). */
  peak: number;
  /** gflops / peak. */
  peakShare: number;
}

/**
 * onnxruntime's CPU MatMul throughput here, on demand: float32 n x n by n x n products (2 n^3
 * FLOP) for n = 512 and 1024, with `threads` intra-op threads and the session options the
 * runtime's workers use; measure() gives the best GFLOP/s of `rounds` runs of each.
 */
export async function createPeakMeter(threads: number, sizes = [512, 1024], rounds = 8) {
  const sessions = await Promise.all(
    sizes.map(async (n) => {
      const g = new GraphBuilder({ name: `matmul-peak-${n}` });
      const a = g.input('a', 'float32', [n, n]);
      const b = g.initializer('b', new Float32Array(n * n).map((_, i) => ((i * 7919) % 13) / 13 - 0.5), [n, n]);
      g.output(g.op('MatMul', [a, b]), 'c', 'float32', [n, n]);
      const session = await ort.InferenceSession.create(g.toBytes(), { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads });
      const feeds = { a: new ort.Tensor('float32', new Float32Array(n * n).map((_, i) => ((i * 104729) % 17) / 17 - 0.5), [n, n]) };
      for (let i = 0; i < 2; i++) await session.run(feeds); // warm-up: thread pool, packing buffers
      return { n, session, feeds };
    }),
  );
  return {
    threads,
    describe: `onnxruntime MatMul float32 ${sizes.map((n) => `${n}^3`).join(' and ')}, ${threads} thread${threads === 1 ? '' : 's'}`,
    async measure(): Promise<number> {
      let best = 0;
      for (const { n, session, feeds } of sessions) {
        for (let i = 0; i < rounds; i++) {
          const t0 = performance.now();
          await session.run(feeds);
          best = Math.max(best, (2 * n ** 3) / (performance.now() - t0) / 1e6);
        }
      }
      return best;
    },
    release: () => Promise.all(sessions.map((s) => s.session.release())),
  };
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
  const meter = await createPeakMeter(runtime.threads);
  const { tf, note } = await loadTfjs('wasm');
  log(`ONNX: onnxruntime-node CPU, ${runtime.threads} threads; TF.js: ${note}`);
  log(`  peak: ${meter.describe}, best run, measured right before and right after each row; "% of MatMul peak" is against it`);
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
        const row = async (p: UpscaleRow['path'], time: () => Promise<number>): Promise<UpscaleRow> => {
          const before = await meter.measure();
          const ms = await time();
          const peak = Math.max(before, await meter.measure());
          const gflops = flop / ms / 1e6;
          const r = { model: name, size, path: p, ms, mpPerS: (size * 4) ** 2 / ms / 1e3, gflops, peak, peakShare: gflops / peak };
          log(
            `  ${name.padEnd(17)} ${String(size).padStart(3)}px ${p.padEnd(10)} ${ms.toFixed(1).padStart(8)} ms  ${r.mpPerS.toFixed(2).padStart(6)} MP/s  ` +
              `${gflops.toFixed(1).padStart(6)} GFLOP/s  ${(r.peakShare * 100).toFixed(0).padStart(3)} % of MatMul peak (${peak.toFixed(0)} GFLOP/s)`,
          );
          rows.push(r);
          return r;
        };
        const untiled = await row('onnx', () => median(() => runNode(UpscaleImage, { model, image, tile_size: size, overlap: 16 }, fakeContext(env)), ROUNDS));
        // 2x2 tiles overlapping by 16 px: the smallest tiling that still blends seams.
        await row('onnx tiled', () => median(() => runNode(UpscaleImage, { model, image, tile_size: size / 2 + 8, overlap: 16 }, fakeContext(env)), ROUNDS));
        if (!WITH_TFJS) continue;
        const tfRounds = entry.macsPerOutputPixel > 100_000 && size > 128 ? 1 : 2;
        const reference = await row('tfjs', () => median(async () => runTfjs(tf, tfModel, def, image.data, size, size), tfRounds));
        log(`    ONNX is ${(reference.ms / untiled.ms).toFixed(1)}x as fast as TF.js`);
      }
      tfModel.dispose();
    }
  } finally {
    await meter.release();
    await runtime.close();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await measureUpscale((line) => process.stdout.write(`${line}\n`));
