/**
 * Test-only nodes for the fault, durability and load tests: a cheap image source, a slow
 * pass-through (so a prompt can be caught mid-run) and a node that runs an ONNX model in the
 * runtime's worker thread and can make that worker die mid-run. Never part of the catalogue.
 */
import { defineNode, type AnyNodeDefinition } from '../../nodes/api/define.ts';
import { resolveInside } from '../../nodes/api/data-dirs.ts';
import { createImage } from '../../nodes/api/tensor.ts';
import { boolean, int, string } from '../../nodes/api/widgets.ts';
import type { StudioRuntime } from '../../server/runtime/index.ts';

export const TestSolid = defineNode({
  id: 'TestSolid',
  displayName: 'Test Solid',
  category: 'test',
  description: 'A small grey image; `value` changes its shade (and its cache key).',
  inputs: {},
  widgets: { size: int({ default: 16, min: 1, max: 512 }), value: int({ default: 128, min: 0, max: 1e9 }) },
  outputs: { image: 'IMAGE' },
  execute({ size, value }) {
    const image = createImage(1, 3, size, size);
    image.data.fill((value % 256) / 255);
    return { image };
  },
});

export const TestSlowImage = defineNode({
  id: 'TestSlowImage',
  displayName: 'Test Slow Image',
  category: 'test',
  description: 'Passes an image through after `steps` waits of `ms`, reporting progress after each.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: { steps: int({ default: 10, min: 1, max: 100_000 }), ms: int({ default: 10, min: 0, max: 10_000 }) },
  outputs: { image: 'IMAGE' },
  async execute({ image, steps, ms }, ctx) {
    for (let i = 0; i < steps; i++) {
      await new Promise((r) => setTimeout(r, ms));
      ctx.progress(i + 1, steps);
    }
    return { image };
  },
});

export const TestModelRun = defineNode({
  id: 'TestModelRun',
  displayName: 'Test Model Run',
  category: 'test',
  description:
    'Runs a models-folder ONNX file `runs` times in its worker, on a vector (size 0) or a 1x3xSxS image; with `crash`, the worker dies during the first run; with `oom`, it runs out of JavaScript heap.',
  inputs: {},
  widgets: {
    model: string({ default: 'add-one.onnx' }),
    runs: int({ default: 1, min: 1, max: 10_000 }),
    size: int({ default: 0, min: 0, max: 2048 }),
    crash: boolean({ default: false }),
    oom: boolean({ default: false }),
  },
  outputs: {},
  output: true,
  async execute({ model, runs, size, crash, oom }, ctx) {
    const runtime = ctx.env.runtime as StudioRuntime;
    const session = await runtime.load(resolveInside(ctx.env.dirs, 'models', model), { provider: 'cpu' });
    // The runtime's own hook: the worker thread calls process.exit() inside its next run, which
    // is what a native crash or an out-of-memory abort of the worker looks like from outside.
    if (crash) runtime.crashWorkerForTest(session.id);
    // Only a runtime created with `testHooks` has this: the worker allocates until its heap limit
    // ends it, while the runs below keep asking it for work (one of them meets the end).
    if (oom) runtime.exhaustWorkerHeapForTest(session.id);
    const feed = size === 0 ? { data: Float32Array.of(1), dims: [1] } : { data: new Float32Array(3 * size * size).fill(0.5), dims: [1, 3, size, size] };
    for (let i = 0; i < runs; i++) {
      const out = await session.run({ x: feed }, { signal: ctx.signal });
      if (!Number.isFinite(out.y!.data[0])) throw new Error('the model gave no number');
      ctx.progress(i + 1, runs);
    }
    return {};
  },
});

export const faultNodes: AnyNodeDefinition[] = [TestSolid, TestSlowImage, TestModelRun];
