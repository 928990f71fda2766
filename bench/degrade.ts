/**
 * The Real-ESRGAN second-order degradation (paper settings, no unsharp masking) on astronaut.png:
 * 512x512 -> 128x128 over 60 seeds (min and median), and 2048x2048 (the photo enlarged, bicubic)
 * -> 512x512 over 8 seeds, single-threaded: the pipeline runs on this thread and libvips (JPEG) is
 * held to one thread while it is measured. Then the node's path: the same work in the worker
 * thread, with the longest gap a 5 ms timer saw on the main thread meanwhile. Each size also
 * gets a breakdown: the mean ms per image of each operation (blur, resize, noise, JPEG of the two
 * stages, the final resize and sinc, the rounding), which shows where the time goes.
 * Reference: BasicSR on numpy + OpenCV, one thread, 512 -> 128: min 48 ms, median 74 ms.
 *
 * `npx tsx bench/degrade.ts` runs it alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_LIMITS } from '../nodes/api/env.ts';
import { Rng } from '../nodes/api/rng.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { degradeImage, resizeTorch, type StageTimings } from '../nodes/degrade/lib/pipeline.ts';
import { realEsrganConfig } from '../nodes/degrade/lib/presets.ts';
import { runInWorker } from '../nodes/degrade/worker-pool.ts';
import { decodeImage } from '../nodes/image/codec.ts';

const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');

export interface DegradeRow {
  size: number;
  seeds: number;
  minMs: number;
  medianMs: number;
  /** Mean ms per image of each operation (kernels, blur 1, resize 1, noise 1, jpeg 1, ...). */
  stages: StageTimings;
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
  const threads = sharp.concurrency();
  sharp.concurrency(1);
  try {
    for (const [image, seeds] of [
      [photo, 60],
      [resizeTorch(photo, 2048, 2048, 'bicubic'), 8],
    ] as const) {
      const row = await timeSeeds(image, seeds);
      rows.push(row);
      log(
        `  degrade ${row.size}x${row.size} -> ${row.size / 4}x${row.size / 4}, one thread: min ${row.minMs.toFixed(1)} ms, ` +
          `median ${row.medianMs.toFixed(1)} ms over ${row.seeds} seeds` +
          (row.size === 512 ? ' (BasicSR reference: min 48 ms, median 74 ms; goal: 2x faster)' : ''),
      );
      log(`    mean ms per image: ${Object.entries(row.stages).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    }
  } finally {
    sharp.concurrency(threads);
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
