/**
 * Checks the TF.js → ONNX conversion of the shipped @upscalerjs models against TF.js itself and
 * records reference values for CI (test/models/esrgan-parity.test.ts runs only the ONNX side).
 *
 *   npx tsx tools/tfjs-parity.ts [--models "esrgan-slim x2,esrgan-thick x4"] [--full] [--cpu]
 *
 * --full also times the whole 128x128 fixture; --cpu uses TF.js's pure-JS backend.
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { convertTfjsLayersModelDetailed } from '../server/models/tfjs/convert.ts';
import { SHIPPED_MODELS, shippedModelJsonPath } from '../server/models/tfjs/shipped.ts';
import { loadFixtureCrop, type Crop } from '../test/support/esrgan-fixture.ts';
import { loadTfjs, loadTfjsModel, packageDefinition, runTfjs } from '../test/support/tfjs-reference.ts';

const { values: args } = parseArgs({
  options: { models: { type: 'string' }, full: { type: 'boolean', default: false }, cpu: { type: 'boolean', default: false } },
});
const CROP: Crop = { left: 32, top: 32, width: 64, height: 64 };
const FULL: Crop = { left: 0, top: 0, width: 128, height: 128 };
const THREADS = Math.min(os.availableParallelism(), 8);
const OUT = path.resolve('test/fixtures/esrgan-parity.json');

const selected = args.models ? args.models.split(',').map((s) => s.trim()) : SHIPPED_MODELS.map((m) => m.name);
const { tf, note } = await loadTfjs(args.cpu ? 'cpu' : 'wasm');
console.log(`TF.js backend: ${note}; onnxruntime-node ${ort.env.versions.common}, ${THREADS} intra-op threads`);

/** Best of `runs` after a warm-up: the machine is shared, and the minimum is the least noisy. */
async function timeIt<T>(fn: () => Promise<T> | T, runs = 3): Promise<{ result: T; ms: number }> {
  let result = await fn(); // warm-up: first runs allocate and pick kernels
  let ms = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await fn();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { result, ms };
}

async function onnxRunner(bytes: Uint8Array) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: THREADS });
  return {
    run: async (x: Float32Array, h: number, w: number) => {
      const out = await session.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) });
      return out.output!.data as Float32Array;
    },
    release: () => session.release(),
  };
}

/** 4 corners (padding paths) then pseudo-random positions from a fixed LCG. */
function positions(dims: readonly number[], count = 32): Array<[number, number, number]> {
  const [, c = 3, h = 1, w = 1] = dims;
  const out: Array<[number, number, number]> = [[0, 0, 0], [1, 0, w - 1], [2, h - 1, 0], [0, h - 1, w - 1]];
  let seed = 12345;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  while (out.length < count) out.push([next(c), next(h), next(w)]);
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

// With --models, keep the other models' stored entries: the CI test expects all of them.
const previous = await readFile(OUT, 'utf8').then((t) => JSON.parse(t) as { models?: Record<string, unknown> }, () => undefined);
const entries: Record<string, unknown> = { ...(args.models ? previous?.models : {}) };
for (const name of selected) {
  const entry = SHIPPED_MODELS.find((m) => m.name === name);
  if (!entry) throw new Error(`unknown model ${name}`);
  const modelJson = shippedModelJsonPath(entry);
  const def = packageDefinition(entry.package, entry.scale);
  const tfModel = await loadTfjsModel(tf, modelJson, def);
  const conv = await timeIt(() => convertTfjsLayersModelDetailed(modelJson), 2);
  const unfolded = await convertTfjsLayersModelDetailed(modelJson, { foldUpsample: false });
  const onnx = await onnxRunner(conv.result.bytes);
  const plain = await onnxRunner(unfolded.bytes);

  const input = await loadFixtureCrop(CROP);
  const ref = await timeIt(() => runTfjs(tf, tfModel, def, input, CROP.height, CROP.width), 2);
  const ours = await timeIt(() => onnx.run(input, CROP.height, CROP.width), 5);
  const noFold = await timeIt(() => plain.run(input, CROP.height, CROP.width), 5);
  const diff = maxAbsDiff(ours.result, ref.result.data);
  const foldDiff = maxAbsDiff(ours.result, noFold.result);
  const sum = ref.result.data.reduce((a, v) => a + v, 0);
  const line = [`${name.padEnd(18)} max|onnx-tfjs| ${diff.toExponential(2)}  fold-vs-resize ${foldDiff.toExponential(2)}`,
    `64x64: tfjs ${ref.ms.toFixed(0)} ms, onnx ${ours.ms.toFixed(1)} ms (no fold ${noFold.ms.toFixed(1)} ms), x${(ref.ms / ours.ms).toFixed(1)}`,
    `convert ${conv.ms.toFixed(0)} ms, ${Math.round(conv.result.macsPerOutputPixel)} MAC/out px`];

  let full: Record<string, number> | undefined;
  if (args.full) {
    const big = await loadFixtureCrop(FULL);
    const t = await timeIt(() => runTfjs(tf, tfModel, def, big, FULL.height, FULL.width), 2);
    const o = await timeIt(() => onnx.run(big, FULL.height, FULL.width), 5);
    const p = await timeIt(() => plain.run(big, FULL.height, FULL.width), 5);
    full = { tfjsMs: round(t.ms), onnxMs: round(o.ms), onnxNoFoldMs: round(p.ms), maxAbsDiff: maxAbsDiff(o.result, t.result.data) };
    line.push(`128x128: tfjs ${t.ms.toFixed(0)} ms, onnx ${o.ms.toFixed(1)} ms (no fold ${p.ms.toFixed(1)}), diff ${full.maxAbsDiff!.toExponential(2)}`);
  }
  console.log(line.join(' | '));
  entries[name] = {
    package: entry.package,
    version: entry.version,
    scale: entry.scale,
    crop: CROP,
    outputDims: ref.result.dims,
    maxAbsDiff: diff,
    foldVsResizeMaxAbsDiff: foldDiff,
    checksum: { sum, mean: sum / ref.result.data.length },
    values: positions(ref.result.dims).map(([c, y, x]) => {
      const [, , h = 0, w = 0] = ref.result.dims;
      return { c, y, x, v: ref.result.data[(c * h + y) * w + x]! };
    }),
    timingsMs: { tfjs: round(ref.ms), onnx: round(ours.ms), onnxNoFold: round(noFold.ms), convert: round(conv.ms), ...(full ? { full128: full } : {}) },
  };
  tfModel.dispose();
  await onnx.release();
  await plain.release();
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

const doc = {
  note: 'Reference values from TF.js (tools/tfjs-parity.ts). Outputs are NCHW, 0..1, clipped; input is the fixture crop / 255.',
  generated: new Date().toISOString(),
  tfjs: { version: tf.version.tfjs, backend: note },
  onnxruntime: { version: ort.env.versions.common, intraOpNumThreads: THREADS },
  models: Object.fromEntries(SHIPPED_MODELS.filter((m) => m.name in entries).map((m) => [m.name, entries[m.name]])),
};
await writeFile(OUT, JSON.stringify(doc, null, 1) + '\n');
console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
