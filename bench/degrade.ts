/**
 * The Real-ESRGAN second-order degradation (paper settings, no unsharp masking) on astronaut.png:
 * 512x512 -> 128x128 over 20 seeds (min and median), and 2048x2048 (the photo enlarged, bicubic)
 * -> 512x512 over a few seeds. Reference: BasicSR on numpy + OpenCV, one thread, 512 -> 128:
 * min 48 ms, median 74 ms.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_LIMITS } from '../nodes/api/env.ts';
import { Rng } from '../nodes/api/rng.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { degradeImage, resizeTorch } from '../nodes/degrade/lib/pipeline.ts';
import { realEsrganConfig } from '../nodes/degrade/lib/presets.ts';
import { decodeImage } from '../nodes/image/codec.ts';

const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');

export interface DegradeRow {
  size: number;
  seeds: number;
  minMs: number;
  medianMs: number;
}

async function timeSeeds(image: ImageTensor, seeds: number): Promise<DegradeRow> {
  const cfg = realEsrganConfig();
  await degradeImage(image, new Rng(1000), cfg, 4); // warm-up (JIT, sharp)
  const ms: number[] = [];
  for (let s = 0; s < seeds; s++) {
    const t0 = performance.now();
    await degradeImage(image, new Rng(s), cfg, 4);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 ? ms[mid]! : (ms[mid - 1]! + ms[mid]!) / 2;
  return { size: image.w, seeds, minMs: ms[0]!, medianMs: median };
}

export async function measureDegrade(log: (line: string) => void): Promise<DegradeRow[]> {
  const photo = await decodeImage(fs.readFileSync(PHOTO), DEFAULT_LIMITS);
  const rows: DegradeRow[] = [];
  for (const [image, seeds] of [
    [photo, 20],
    [resizeTorch(photo, 2048, 2048, 'bicubic'), 4],
  ] as const) {
    const row = await timeSeeds(image, seeds);
    rows.push(row);
    log(
      `  degrade ${row.size}x${row.size} -> ${row.size / 4}x${row.size / 4}: min ${row.minMs.toFixed(0)} ms, ` +
        `median ${row.medianMs.toFixed(0)} ms over ${row.seeds} seeds` +
        (row.size === 512 ? ' (BasicSR reference: min 48 ms, median 74 ms)' : ''),
    );
  }
  return rows;
}
