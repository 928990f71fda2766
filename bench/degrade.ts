/**
 * The Real-ESRGAN second-order degradation (paper settings, no unsharp masking) on astronaut.png:
 * 512x512 -> 128x128 over 60 seeds (min and median), and 2048x2048 (the photo enlarged, bicubic)
 * -> 512x512 over 8 seeds, single-threaded: the pipeline runs on this thread and libvips (JPEG) is
 * held to one thread while it is measured. Then the node's path: the same work in the worker
 * thread, with the longest gap a 5 ms timer saw on the main thread meanwhile. Each size also
 * gets a breakdown: the mean ms per image of each operation (blur, resize, noise, JPEG of the two
 * stages, the final resize and sinc, the rounding), which shows where the time goes.
 *
 * The baseline is measured in the same run: bench/reference/realesrgan_degrade.py, the same
 * pipeline on numpy + OpenCV (one thread), written from ../shared/docs/degradation-reference.md,
 * timed over the same image, sizes and number of seeds right after ours. It needs a python3 that
 * imports cv2 and numpy (Debian: python3-opencv, python3-numpy); SUPIR_BENCH_PYTHON names one,
 * else /usr/bin/python3, python3 and python are tried. Without one the bench says so and prints
 * our figures as "no baseline".
 *
 * `npx tsx bench/degrade.ts` runs it alone.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_LIMITS } from '../nodes/api/env.ts';
import { Rng } from '../nodes/api/rng.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { degradeImage, resizeTorch, type StageTimings } from '../nodes/degrade/lib/pipeline.ts';
import { realEsrganConfig } from '../nodes/degrade/lib/presets.ts';
import { runInWorker } from '../nodes/degrade/worker-pool.ts';
import { decodeImage } from '../nodes/image/codec.ts';

const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');
const REFERENCE = path.resolve(import.meta.dirname, 'reference/realesrgan_degrade.py');

/** The Python reference's figures for one size (its JSON line). */
export interface ReferenceRow {
  size: number;
  seeds: number;
  min_ms: number;
  median_ms: number;
  stages: Record<string, number>;
  versions: { python: string; numpy: string; cv2: string };
}

export interface DegradeRow {
  size: number;
  seeds: number;
  minMs: number;
  medianMs: number;
  /** Mean ms per image of each operation (kernels, blur 1, resize 1, noise 1, jpeg 1, ...). */
  stages: StageTimings;
  /** The numpy + OpenCV reference on the same image, size and seed count, run right after; absent without python3 + cv2. */
  reference?: ReferenceRow;
}

/** A python3 that imports cv2 and numpy, or why there is none. */
export function findReferencePython(env: NodeJS.ProcessEnv = process.env): { python: string } | { missing: string } {
  const candidates = env.SUPIR_BENCH_PYTHON ? [env.SUPIR_BENCH_PYTHON] : ['/usr/bin/python3', 'python3', 'python'];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import cv2, numpy'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status === 0) return { python };
  }
  return { missing: `no python3 with cv2 and numpy (tried ${candidates.join(', ')}; Debian: apt-get install python3-opencv python3-numpy, or set SUPIR_BENCH_PYTHON)` };
}

async function timeReference(python: string, size: number, seeds: number): Promise<ReferenceRow> {
  const { stdout } = await promisify(execFile)(python, [REFERENCE, PHOTO, '--size', String(size), '--seeds', String(seeds)], {
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ReferenceRow;
}

const median = (ms: number[]): number => {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function timeSeeds(image: ImageTensor, seeds: number): Promise<DegradeRow> {
  const cfg = realEsrganConfig();
  for (let s = 0; s < 5; s++) await degradeImage(image, new Rng(1000 + s), cfg, 4); // warm-up (JIT, sharp, Poisson tables)
  const ms: number[] = [];
  const stages: StageTimings = {};
  for (let s = 0; s < seeds; s++) {
    const t0 = performance.now();
    await degradeImage(image, new Rng(s), cfg, 4, undefined, stages);
    ms.push(performance.now() - t0);
  }
  for (const k of Object.keys(stages)) stages[k]! /= seeds;
  return { size: image.w, seeds, minMs: Math.min(...ms), medianMs: median(ms), stages };
}

/** The node's path: ms per image through the worker, and the main thread's longest timer gap. */
async function timeWorker(image: ImageTensor, seeds: number): Promise<{ medianMs: number; worstGapMs: number; busy: number }> {
  const cfg = realEsrganConfig();
  await runInWorker('degrade', image, 999, { cfg, scale: 4 }); // starts the worker
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  const elu = performance.eventLoopUtilization();
  const ms: number[] = [];
  for (let s = 0; s < seeds; s++) {
    const t0 = performance.now();
    await runInWorker('degrade', image, s, { cfg, scale: 4 });
    ms.push(performance.now() - t0);
  }
  const busy = performance.eventLoopUtilization(elu).utilization;
  clearInterval(timer);
  return { medianMs: median(ms), worstGapMs: worst, busy };
}

export async function measureDegrade(log: (line: string) => void): Promise<DegradeRow[]> {
  const photo = await decodeImage(fs.readFileSync(PHOTO), DEFAULT_LIMITS);
  const rows: DegradeRow[] = [];
  const py = findReferencePython();
  log('python' in py ? `  baseline: bench/reference/realesrgan_degrade.py on ${py.python}, numpy + OpenCV, one thread, same image, sizes and seed counts, run after ours` : `  no baseline: ${py.missing}`);
  const threads = sharp.concurrency();
  for (const [size, seeds] of [
    [512, 60],
    [2048, 8],
  ] as const) {
    const image = size === photo.w ? photo : resizeTorch(photo, size, size, 'bicubic');
    sharp.concurrency(1);
    let row: DegradeRow;
    try {
      row = await timeSeeds(image, seeds);
    } finally {
      sharp.concurrency(threads);
    }
    rows.push(row);
    const what = `  degrade ${row.size}x${row.size} -> ${row.size / 4}x${row.size / 4}, one thread, ${row.seeds} seeds:`;
    const ours = `min ${row.minMs.toFixed(1)} ms, median ${row.medianMs.toFixed(1)} ms`;
    if ('python' in py) {
      const ref = await timeReference(py.python, size, seeds);
      row.reference = ref;
      log(`${what} ours ${ours}; numpy ${ref.versions.numpy} + OpenCV ${ref.versions.cv2}: min ${ref.min_ms.toFixed(1)} ms, median ${ref.median_ms.toFixed(1)} ms`);
      log(`    ours is ${(ref.median_ms / row.medianMs).toFixed(2)}x as fast at the median, ${(ref.min_ms / row.minMs).toFixed(2)}x at the min [goal: 2x]`);
    } else {
      log(`${what} ours ${ours} (no baseline)`);
    }
    log(`    mean ms per image, ours: ${Object.entries(row.stages).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    if (row.reference) log(`    mean ms per image, numpy + OpenCV: ${Object.entries(row.reference.stages).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  }
  const big = resizeTorch(photo, 1024, 1024, 'bicubic');
  const w = await timeWorker(big, 10);
  log(
    `  in the worker (the node's path), 1024x1024: median ${w.medianMs.toFixed(0)} ms; main thread busy ${(100 * w.busy).toFixed(1)} %, ` +
      `longest 5 ms-timer gap ${w.worstGapMs.toFixed(1)} ms [aim < 20 ms; a busy machine's scheduling adds to it]`,
  );
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await measureDegrade((line) => process.stdout.write(`${line}\n`));
