/**
 * What every degradation node does with a batch: each image goes through the worker with its
 * own seed, drawn from the node's seed (so image i of a batch is degraded as the same image alone
 * would be with that seed), progress is reported per step, and the results are stacked again.
 */
import type { NodeContext } from '../api/define.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import type { OpArgs, OpName } from './lib/ops.ts';
import { runInWorker } from './worker-pool.ts';

export interface BatchResult {
  image: ImageTensor;
  /** What was drawn, per image. */
  params: Record<string, unknown>[];
}

/**
 * Runs `op` on every image. With `sameDraws` every image gets the same seed (a resize must give
 * one size for the whole batch); otherwise image i gets the i-th seed drawn from ctx.rng(seed).
 */
export async function runBatch<K extends OpName>(
  op: K,
  image: ImageTensor,
  seed: number,
  args: OpArgs[K],
  ctx: NodeContext,
  opts: { sameDraws?: boolean } = {},
): Promise<BatchResult> {
  const rng = ctx.rng(seed);
  // 53-bit item seeds from two 32-bit draws.
  const seeds = Array.from({ length: image.n }, () => rng.nextUint32() * 2 ** 21 + (rng.nextUint32() >>> 11));
  const results: ImageTensor[] = [];
  const params: Record<string, unknown>[] = [];
  for (let i = 0; i < image.n; i++) {
    ctx.checkAborted();
    // Progress in quarters of an image: the pipeline reports its four stages, the others only their end.
    const r = await runInWorker(op, batchItem(image, i), opts.sameDraws ? seeds[0]! : seeds[i]!, args, {
      signal: ctx.signal,
      onStep: (step, total) => ctx.progress(i * 4 + Math.round((4 * step) / total), image.n * 4),
    });
    ctx.progress((i + 1) * 4, image.n * 4);
    results.push(r.image);
    params.push(r.params);
  }
  const first = results[0]!;
  if (results.length === 1) return { image: first, params };
  const out = createImage(image.n, first.c, first.h, first.w);
  results.forEach((r, i) => out.data.set(r.data, i * r.data.length));
  return { image: out, params };
}
