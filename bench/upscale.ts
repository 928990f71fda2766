/**
 * x4 upscaling with each shipped model family on 128x128 and 256x256 crops of a photo: this
 * runtime against the same model in TensorFlow.js (wasm), in the same process. Achieved GFLOP/s =
 * multiply-adds per output pixel (the model's own layer shapes) x 2 x output pixels / time, so
 * work a tiling repeats in overlaps counts as lost time, not as FLOPs.
 *
 * Rows per model and size:
 * - `onnx`: one model run over the whole crop, through the runtime (worker thread), untiled.
 * - `onnx tiled`: 2x2 tiles overlapping by 16 px (the smallest tiling that still blends seams),
 *   each run through the runtime and blended as Upscale Image blends them.
 * - `node`: the Upscale Image node as it ships, which also cuts runs to keep Stop responsive
 *   (esrgan-thick: 64 px tiles, many of them overlap); its tile count is printed.
 * - `tfjs`: TensorFlow.js on its wasm backend (SUPIR_BENCH_TFJS=0 skips it).
 *
 * The share is of a peak measured in the same run, not of a datasheet figure: the GFLOP/s that
 * onnxruntime's own CPU MatMul (MLAS sgemm) reaches on this machine with the runtime's thread
 * count (512^3 and 1024^3 float32 products, best run), measured right before and right after each
 * row, so that load on a shared machine weighs on both sides alike (createPeakMeter). It is the
 * achievable peak of the library the models run on: the same FMA kernels and threads, nothing
 * else in the way. A hand-written WebAssembly SIMD loop would not do: wasm has 128-bit vectors
 * and no fused multiply-add, a quarter of what MLAS's AVX2/AVX-512 kernels do per cycle. Both
 * sides are best runs (the row's median is printed beside its best): on a machine shared with
 * other work, the best run is the one least disturbed, for the peak and the model alike. With
 * one thread (SUPIR_BENCH_THREADS=1) each row also gives "CPU time": the same ratio with the CPU
 * seconds this process spent instead of wall seconds, on both sides, which time other processes
 * take from the core does not inflate. With more threads it would mean little: onnxruntime's
 * pool threads (the model's and the peak meter's) spin-wait between runs and ops, and count.
 *
 * `SUPIR_BENCH_TFJS=0 npx tsx bench/upscale.ts` runs it alone, without TF.js;
 * `SUPIR_BENCH_MODELS=thick` (or a comma list) runs only those families; `SUPIR_BENCH_THREADS=1`
 * runs the models and the peak on one thread (default: every core), which on a machine busy with
 * other work measures the kernels rather than how often the OS lets two threads run together.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { ModelSession } from '../nodes/api/runtime.ts';
import type { ModelHandle } from '../nodes/api/sockets.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { extractTile, planTiles, TileBlender } from '../nodes/api/tiling.ts';
import { hwcUint8ToImage } from '../nodes/image/codec.ts';
import { modelMacsPerInputPixel } from '../nodes/upscale/model-cost.ts';
import UpscaleImage, { runTileSize } from '../nodes/upscale/upscale-image.ts';
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type NodeEnv } from '../nodes/api/env.ts';
import { createModelLibrary } from '../server/models/library.ts';
import { GraphBuilder } from '../server/models/onnx/builder.ts';
import { findShippedModel, shippedModelJsonPath } from '../server/models/tfjs/index.ts';
import { createRuntime } from '../server/runtime/index.ts';
import { fakeContext, runNode } from '../test/support/fake-context.ts';
import { loadTfjs, loadTfjsModel, packageDefinition, runTfjs } from '../test/support/tfjs-reference.ts';

/** SUPIR_BENCH_MODELS=medium,thick,maxim picks families (default: all four). */
const picked = (m: string): boolean => (process.env.SUPIR_BENCH_MODELS ?? 'slim,medium,thick,maxim').split(',').some((f) => f.trim() !== '' && m.includes(f.trim()));
const MODELS = ['esrgan-slim x4', 'esrgan-medium x4', 'esrgan-thick x4'].filter(picked);
/** SUPIR_BENCH_TFJS=0 skips the TF.js reference (a minute on 2 cores, mostly thick at 256 px). */
const WITH_TFJS = process.env.SUPIR_BENCH_TFJS !== '0';
const SIZES = [128, 256];
/** The MAXIM rows: a three-stage and a two-stage model, at the CPU tile (nodes/upscale/load-model.ts). */
const MAXIM_MODELS = ['maxim-denoising', 'maxim-enhancement'].filter(picked);
const MAXIM_TILE = 128;
/** Timed runs per row after one warm-up (esrgan-thick at 256 px: 3, each takes seconds). */
const ROUNDS = 5;
const OVERLAP = 16;
const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');

export interface UpscaleRow {
  model: string;
  size: number;
  path: 'onnx' | 'onnx tiled' | 'node' | 'tfjs';
  /** Best run. */
  ms: number;
  medianMs: number;
  mpPerS: number;
  gflops: number;
  /** The MatMul peak measured around this row (GFLOP/s). */
  peak: number;
  /** gflops (of the best run) / peak. */
  peakShare: number;
  /** The same share in CPU time on both sides (see cpuMs); meaningful with one thread only. */
  cpuShare: number;
}

/** CPU milliseconds of this process (every thread) spent in `fn`, divided by `threads`. */
async function cpuMs<T>(threads: number, fn: () => Promise<T>): Promise<number> {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / threads;
}

/**
 * onnxruntime's CPU MatMul throughput here, on demand: float32 n x n by n x n products (2 n^3
 * FLOP) for n = 512 and 1024, with `threads` intra-op threads and the session options the
 * runtime's workers use; measure() gives the best GFLOP/s of `rounds` runs of each, by wall time
 * and by CPU time (÷ threads).
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
    async measure(): Promise<{ wall: number; cpu: number }> {
      const best = { wall: 0, cpu: 0 };
      for (const { n, session, feeds } of sessions) {
        for (let i = 0; i < rounds; i++) {
          const t0 = performance.now();
          const cpu = await cpuMs(threads, () => session.run(feeds));
          best.wall = Math.max(best.wall, (2 * n ** 3) / (performance.now() - t0) / 1e6);
          best.cpu = Math.max(best.cpu, (2 * n ** 3) / cpu / 1e6);
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

/** Best and median wall time, and best CPU time (÷ threads), of `rounds` runs after one warm-up. */
async function timeRuns(fn: () => Promise<unknown>, rounds: number, threads: number): Promise<{ best: number; median: number; cpu: number }> {
  await fn();
  const times: number[] = [];
  let cpu = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    cpu = Math.min(cpu, await cpuMs(threads, fn));
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { best: times[0]!, median: times[Math.floor(times.length / 2)]!, cpu };
}

/** The model over `image` in tiles of `tile` px, blended as Upscale Image blends them. */
async function runTiled(session: ModelSession, image: ImageTensor, tile: number, scale: number): Promise<Float32Array> {
  const plan = planTiles(image.w, image.h, { tile, overlap: OVERLAP });
  const blender = new TileBlender(plan, scale, 3);
  const target = blender.target();
  for (let t = 0; t < plan.tiles.length; t++) {
    const x = extractTile(image, plan, t);
    const out = await session.run({ [session.inputs[0]!.name]: { data: x.data, dims: [1, 3, x.h, x.w] } });
    blender.add(target, t, out[session.outputs[0]!.name]!.data as Float32Array);
  }
  blender.normalise(target);
  return target;
}

export async function measureUpscale(log: (line: string) => void): Promise<UpscaleRow[]> {
  const threads = Number(process.env.SUPIR_BENCH_THREADS) || undefined;
  const runtime = createRuntime({ provider: 'cpu', ...(threads ? { threads } : {}) });
  const dirs = createDataDirs(fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-up-')));
  const env: NodeEnv = { dirs, limits: DEFAULT_LIMITS, runtime, models: createModelLibrary(dirs) };
  const meter = await createPeakMeter(runtime.threads);
  const { tf, note } = await loadTfjs('wasm');
  log(`ONNX: onnxruntime-node CPU, ${runtime.threads} threads; TF.js: ${note}`);
  log(`  peak: ${meter.describe}, best run, measured right before and right after each row; "% of MatMul peak" is against it`);
  const withCpu = runtime.threads === 1;
  if (withCpu) log('  "CPU time": the same share with CPU seconds on both sides (time other processes take from the core does not count)');
  const rows: UpscaleRow[] = [];
  try {
    for (const name of MODELS) {
      const resolved = await env.models!.resolve(name);
      const model: ModelHandle = { kind: 'upscale', id: resolved.path, hash: resolved.hash, name, scale: 4, provider: 'cpu' };
      const entry = findShippedModel(name);
      const def = packageDefinition(entry.package, entry.scale);
      const tfModel = await loadTfjsModel(tf, shippedModelJsonPath(entry), def);
      const session = await runtime.load(resolved.path, { provider: 'cpu' });
      for (const size of SIZES) {
        const image = await crop(size);
        const flop = entry.macsPerOutputPixel * 2 * (size * 4) ** 2;
        const rounds = entry.macsPerOutputPixel > 100_000 && size > 128 ? 3 : ROUNDS;
        const row = async (p: UpscaleRow['path'], fn: () => Promise<unknown>, note = '', n = rounds): Promise<UpscaleRow> => {
          const before = await meter.measure();
          const { best: ms, median: medianMs, cpu } = await timeRuns(fn, n, p === 'tfjs' ? 1 : runtime.threads);
          const after = await meter.measure();
          const peak = Math.max(before.wall, after.wall);
          const gflops = flop / ms / 1e6;
          const cpuShare = flop / cpu / 1e6 / Math.max(before.cpu, after.cpu);
          const r = { model: name, size, path: p, ms, medianMs, mpPerS: (size * 4) ** 2 / ms / 1e3, gflops, peak, peakShare: gflops / peak, cpuShare };
          log(
            `  ${name.padEnd(17)} ${String(size).padStart(3)}px ${p.padEnd(10)} ${ms.toFixed(1).padStart(8)} ms (median ${medianMs.toFixed(1).padStart(8)})  ${r.mpPerS.toFixed(2).padStart(6)} MP/s  ` +
              `${gflops.toFixed(1).padStart(6)} GFLOP/s  ${(r.peakShare * 100).toFixed(0).padStart(3)} % of MatMul peak (${peak.toFixed(0)} GFLOP/s)` +
              `${withCpu ? `, CPU time ${(cpuShare * 100).toFixed(0).padStart(3)} %` : ''}${note}`,
          );
          rows.push(r);
          return r;
        };
        const feed = { [session.inputs[0]!.name]: { data: image.data, dims: [1, 3, size, size] } };
        const untiled = await row('onnx', () => session.run(feed));
        await row('onnx tiled', () => runTiled(session, image, size / 2 + 8, 4), `  2x2 tiles of ${size / 2 + 8} px`);
        const nodeTile = runTileSize({ tileSize: size, scale: 4, macsPerInputPixel: modelMacsPerInputPixel(resolved.path, resolved.hash) });
        const nodeTiles = planTiles(size, size, { tile: nodeTile, overlap: Math.min(OVERLAP, Math.floor(nodeTile / 2)) }).tiles.length;
        await row('node', () => runNode(UpscaleImage, { model, image, tile_size: size, overlap: OVERLAP }, fakeContext(env)), `  Upscale Image: ${nodeTiles} run${nodeTiles === 1 ? '' : 's'} of ${Math.min(nodeTile, size)} px`);
        if (!WITH_TFJS) continue;
        const tfRounds = entry.macsPerOutputPixel > 100_000 && size > 128 ? 1 : 2;
        const reference = await row('tfjs', async () => runTfjs(tf, tfModel, def, image.data, size, size), '', tfRounds);
        log(`    ONNX is ${(reference.ms / untiled.ms).toFixed(1)}x as fast as TF.js`);
      }
      tfModel.dispose();
    }
    // MAXIM (x1 restoration): one run of the 128 px tile the node uses on the CPU. Its multiply-adds
    // are the Conv and MatMul ones the converter counts; layer norms, GELUs, gating products and
    // transposes are real work the count leaves out, so the share is a lower bound.
    for (const name of MAXIM_MODELS) {
      const entry = findShippedModel(name);
      const resolved = await env.models!.resolve(name, { tile: MAXIM_TILE });
      const session = await runtime.load(resolved.path, { provider: 'cpu' });
      const image = await crop(MAXIM_TILE);
      const feed = { [session.inputs[0]!.name]: { data: image.data, dims: [1, 3, MAXIM_TILE, MAXIM_TILE] } };
      const flop = entry.macsPerOutputPixel * 2 * MAXIM_TILE ** 2;
      const before = await meter.measure();
      const { best: ms, median: medianMs, cpu } = await timeRuns(() => session.run(feed), 3, runtime.threads);
      const after = await meter.measure();
      const peak = Math.max(before.wall, after.wall);
      const gflops = flop / ms / 1e6;
      const r: UpscaleRow = { model: name, size: MAXIM_TILE, path: 'onnx', ms, medianMs, mpPerS: MAXIM_TILE ** 2 / ms / 1e3, gflops, peak, peakShare: gflops / peak, cpuShare: flop / cpu / 1e6 / Math.max(before.cpu, after.cpu) };
      rows.push(r);
      log(
        `  ${name.padEnd(17)} ${String(MAXIM_TILE).padStart(3)}px onnx x1    ${ms.toFixed(1).padStart(8)} ms (median ${medianMs.toFixed(1).padStart(8)})  ${r.mpPerS.toFixed(3).padStart(6)} MP/s  ` +
          `${gflops.toFixed(1).padStart(6)} GFLOP/s  ${(r.peakShare * 100).toFixed(0).padStart(3)} % of MatMul peak (${peak.toFixed(0)} GFLOP/s)  ${(entry.macsPerOutputPixel / 1e6).toFixed(2)} M MAC/px`,
      );
    }
  } finally {
    await meter.release();
    await runtime.close();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await measureUpscale((line) => process.stdout.write(`${line}\n`));
