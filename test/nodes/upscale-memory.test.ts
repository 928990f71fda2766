/**
 * Upscale Image in bounded memory: beside its input and its output, the node holds nothing of the
 * output's size (issue 18: tiles stream from the input to the output). Measured as the main
 * thread's ArrayBuffer bytes (process.memoryUsage().arrayBuffers, where every Float32Array of the
 * node lives) with a cheap x4 model (nearest-neighbour Resize, so the runs cost nothing): after a
 * forced GC before every model run, and right after the node returns, before any GC, so that a
 * full-size temporary it dropped still counts. Before this, a full-size Float32 plane of summed
 * blend weights (a third of the output) lived through every run, and strength < 1 made a bicubic
 * copy of the enlarged input (the output's size again). The streamed strength mix must give what
 * the full-size copy gave, value for value.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../nodes/api/runtime.ts';
import type { ModelHandle } from '../../nodes/api/sockets.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import { resample } from '../../nodes/image/resize.ts';
import LoadUpscaleModel from '../../nodes/upscale/load-model.ts';
import UpscaleImage from '../../nodes/upscale/upscale-image.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { imageFrom } from '../support/images.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

v8.setFlagsFromString('--expose-gc');
const runGc = vm.runInNewContext('gc') as () => void;

/**
 * Live ArrayBuffer bytes: a full GC, repeated until the figure settles (V8 frees the dead buffers'
 * memory on a background sweeper, so one GC's figure can still include some).
 */
async function liveArrayBuffers(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    runGc();
    await new Promise((r) => setTimeout(r, 5));
    const now = process.memoryUsage().arrayBuffers;
    if (now === last) return now;
    last = now;
  }
  return last;
}

const SIDE = 640;
const SCALE = 4;
const OUTPUT_BYTES = 3 * (SIDE * SCALE) ** 2 * 4;
/**
 * Room for a few tiles in flight (a 96 px tile's x4 result is 1.8 MB; measured: up to 7 MB) and
 * small per-row buffers. A full-size float32 plane of one channel is a third of the output.
 */
const SLACK = OUTPUT_BYTES / 6;

/** An x`scale` model that only repeats pixels (Resize nearest): the node's memory, not a model's work. */
function nearestModel(scale: number): Uint8Array {
  const g = new GraphBuilder({ name: `nearest-x${scale}` });
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
  const scales = g.constant(Float32Array.of(1, 1, scale, scale), [4]);
  g.output(g.op('Resize', [x, null, scales], { mode: 'nearest' }), 'y', 'float32', [1, 3, 'H', 'W']);
  return g.toBytes();
}

/** The runtime, its sessions sampling live ArrayBuffer bytes (after a GC) before every run while `on`. */
function sampling(inner: Runtime, samples: number[], on: { sampling: boolean }): Runtime {
  return {
    providers: () => inner.providers(),
    release: (id) => inner.release(id),
    async load(file, opts) {
      const session = await inner.load(file, opts);
      const wrapped = Object.create(session) as typeof session;
      wrapped.run = async (feeds, o) => {
        if (on.sampling) samples.push(await liveArrayBuffers());
        return session.run(feeds, o);
      };
      return wrapped;
    },
  };
}

describe('Upscale Image memory', () => {
  const { env, cleanup } = tempEnv();
  let runtime: StudioRuntime;
  let model: ModelHandle;
  const samples: number[] = [];
  const measure = { sampling: false };
  const input = imageFrom(1, 3, SIDE, SIDE, (_n, c, y, x) => 0.5 + 0.45 * Math.sin(x * 0.05 * (c + 1) + y * 0.031));

  beforeAll(async () => {
    runtime = createRuntime({ provider: 'cpu', threads: 2 });
    env.models = createModelLibrary(env.dirs);
    env.runtime = sampling(runtime, samples, measure);
    fs.writeFileSync(path.join(env.dirs.folders.models, 'nearest-x4.onnx'), nearestModel(SCALE));
    model = (await runNode(LoadUpscaleModel, { model_name: 'nearest-x4.onnx', provider: 'cpu' }, fakeContext(env))).model as ModelHandle;
    // Warm-up: the session open and every code path compiled before anything is measured.
    await upscale(imageFrom(1, 3, 160, 160, () => 0.5), 0.5);
  }, 60_000);
  afterAll(async () => {
    await runtime.close();
    cleanup();
  });

  /** Runs the node (96 px tiles: 64 of them at 640 px); returns its output and the live bytes it added (`sample`: also before each run). */
  async function upscale(image: ImageTensor, strength: number, sample = false): Promise<{ out: ImageTensor; duringRuns: number; atEnd: number }> {
    samples.length = 0;
    measure.sampling = sample;
    const before = await liveArrayBuffers();
    const { image: out } = (await runNode(UpscaleImage, { model, image, tile_size: 96, overlap: 16, strength }, fakeContext(env))) as { image: ImageTensor };
    const atEnd = process.memoryUsage().arrayBuffers - before;
    measure.sampling = false;
    return { out, duringRuns: Math.max(...samples) - before, atEnd };
  }

  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`;

  it.each([1, 0.5])('strength %s: holds the output and at most a few tiles beside it', async (strength) => {
    const { out, duringRuns, atEnd } = await upscale(input, strength, true);
    expect(out.data.byteLength).toBe(OUTPUT_BYTES);
    console.log(`strength ${strength}: output ${mb(OUTPUT_BYTES)}; live during the runs +${mb(duringRuns)}, at the end (no GC) +${mb(atEnd)}`);
    expect(duringRuns).toBeLessThanOrEqual(OUTPUT_BYTES + SLACK);
    expect(atEnd).toBeLessThanOrEqual(OUTPUT_BYTES + SLACK);
  }, 60_000);

  it('mixes with the bicubic enlargement exactly as a full-size copy of it would', async () => {
    const strength = 0.3;
    const full = (await upscale(input, 1)).out.data;
    const mixed = (await upscale(input, strength)).out.data;
    const base = resample(input, SIDE * SCALE, SIDE * SCALE, 'bicubic').data;
    const expected = new Float32Array(full.length);
    for (let i = 0; i < full.length; i++) expected[i] = base[i]! + strength * (full[i]! - base[i]!);
    let differing = 0;
    for (let i = 0; i < full.length; i++) if (mixed[i] !== expected[i]) differing++;
    expect(differing).toBe(0);
  }, 60_000);
});
