/**
 * Checks the TF.js → ONNX conversion of the shipped @upscalerjs models against TF.js itself on a
 * larger crop than CI uses (64x64; test/models/esrgan-parity.test.ts runs every model live on
 * 24x24), comparing whole outputs against the same tolerance, and prints timings. Writes nothing.
 *
 *   npx tsx tools/tfjs-parity.ts [--models "esrgan-slim x2,esrgan-thick x4"] [--full] [--cpu]
 *
 * --full also compares and times the whole 128x128 fixture; --cpu uses TF.js's pure-JS backend.
 * Exit code 1 when a model is off by more than the tolerance.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { convertTfjsLayersModelDetailed } from '../server/models/tfjs/convert.ts';
import { SHIPPED_MODELS, shippedModelJsonPath } from '../server/models/tfjs/shipped.ts';
import { loadFixtureCrop, type Crop } from '../test/support/esrgan-fixture.ts';
import { ESRGAN_PARITY_TOLERANCE, loadTfjs, loadTfjsModel, packageDefinition, runTfjs } from '../test/support/tfjs-reference.ts';

const { values: args } = parseArgs({
  options: { models: { type: 'string' }, full: { type: 'boolean', default: false }, cpu: { type: 'boolean', default: false } },
});
const CROP: Crop = { left: 32, top: 32, width: 64, height: 64 };
const FULL: Crop = { left: 0, top: 0, width: 128, height: 128 };
const THREADS = Math.min(os.availableParallelism(), 8);

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

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

let worst = 0;
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
  const line = [`${name.padEnd(18)} max|onnx-tfjs| ${diff.toExponential(2)}  fold-vs-resize ${foldDiff.toExponential(2)}`,
    `64x64: tfjs ${ref.ms.toFixed(0)} ms, onnx ${ours.ms.toFixed(1)} ms (no fold ${noFold.ms.toFixed(1)} ms), x${(ref.ms / ours.ms).toFixed(1)}`,
    `convert ${conv.ms.toFixed(0)} ms, ${Math.round(conv.result.macsPerOutputPixel)} MAC/out px`];

  worst = Math.max(worst, diff);
  if (args.full) {
    const big = await loadFixtureCrop(FULL);
    const t = await timeIt(() => runTfjs(tf, tfModel, def, big, FULL.height, FULL.width), 2);
    const o = await timeIt(() => onnx.run(big, FULL.height, FULL.width), 5);
    const p = await timeIt(() => plain.run(big, FULL.height, FULL.width), 5);
    const fullDiff = maxAbsDiff(o.result, t.result.data);
    worst = Math.max(worst, fullDiff);
    line.push(`128x128: tfjs ${t.ms.toFixed(0)} ms, onnx ${o.ms.toFixed(1)} ms (no fold ${p.ms.toFixed(1)}), diff ${fullDiff.toExponential(2)}`);
  }
  console.log(line.join(' | '));
  tfModel.dispose();
  await onnx.release();
  await plain.release();
}

console.log(`largest |onnx - tfjs| ${worst.toExponential(2)}: ${worst <= ESRGAN_PARITY_TOLERANCE ? 'within' : 'OVER'} the tolerance ${ESRGAN_PARITY_TOLERANCE}`);
process.exitCode = worst <= ESRGAN_PARITY_TOLERANCE ? 0 : 1;
