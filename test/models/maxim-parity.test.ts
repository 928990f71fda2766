/**
 * The seven @upscalerjs MAXIM models (TF.js graph models) converted to ONNX against TensorFlow.js
 * itself, live: for each, the whole ONNX output of a seeded random 64x64 image and of the
 * package's own fixture photo (the degradation the model is for, shrunk to 64x64) must match TF.js
 * on its wasm backend to within MAXIM_PARITY_TOLERANCE at every value. 64 px is the smallest side
 * MAXIM takes (its divisibility factor), which keeps a TF.js run at 10-25 s on 2 cores.
 *
 * Also: the conversion folds every shape computation (no Shape or Range reaches onnxruntime),
 * Einsum becomes MatMul, every layer norm and GELU is one op, and the multiply-adds per pixel at
 * 128 px are the ones shipped.ts lists.
 */
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convertTfjsGraphModel } from '../../server/models/tfjs/graph/convert.ts';
import { SHIPPED_MODELS, shippedModelJsonPath } from '../../server/models/tfjs/shipped.ts';
import { closeness, describeCloseness, maxAbsDiff } from '../support/close.ts';
import { fixturePath } from '../support/esrgan-fixture.ts';
import { loadTfjs, loadTfjsGraphModel, registerWasmEinsum, type TfjsBackendInfo } from '../support/tfjs-reference.ts';

/** What the README claims: the largest |ONNX − TF.js| over a whole output, outputs in 0..1. */
const MAXIM_PARITY_TOLERANCE = 5e-5;
const SIDE = 64;
const MAXIM = SHIPPED_MODELS.filter((m) => m.tileMultiple);

function seededImage(seed: number): Float32Array {
  const out = new Float32Array(3 * SIDE * SIDE);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = s / 2147483647;
  }
  return out;
}

async function fixtureImage(pkg: string): Promise<Float32Array> {
  const { data, info } = await sharp(fixturePath(pkg)).resize(SIDE, SIDE, { fit: 'cover' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = SIDE * SIDE;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = data[i * info.channels + c]! / 255;
  return out;
}

let tfjs: Promise<TfjsBackendInfo> | undefined;

async function runTfjs(modelJson: string, inputs: Float32Array[]): Promise<Float32Array[]> {
  tfjs ??= loadTfjs('wasm').then((info) => (registerWasmEinsum(info.tf), info));
  const { tf } = await tfjs;
  const model = await loadTfjsGraphModel(tf, modelJson);
  try {
    return inputs.map((nchw) => {
      const n = SIDE * SIDE;
      const nhwc = new Float32Array(3 * n);
      for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) nhwc[i * 3 + c] = nchw[c * n + i]!;
      const y = tf.tidy(() => model.predict(tf.tensor4d(nhwc, [1, SIDE, SIDE, 3])) as import('@tensorflow/tfjs').Tensor);
      const data = y.dataSync() as Float32Array;
      y.dispose();
      const out = new Float32Array(3 * n);
      for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) out[c * n + i] = Math.min(1, Math.max(0, data[i * 3 + c]!));
      return out;
    });
  } finally {
    model.dispose();
  }
}

async function runOnnx(bytes: Uint8Array, inputs: Float32Array[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const outs: Float32Array[] = [];
    for (const x of inputs) {
      const y = (await session.run({ input: new ort.Tensor('float32', x, [1, 3, SIDE, SIDE]) })).output!;
      expect(y.dims).toEqual([1, 3, SIDE, SIDE]);
      outs.push(y.data as Float32Array);
    }
    return outs;
  } finally {
    await session.release();
  }
}

describe(`shipped MAXIM models: the whole ONNX output matches TF.js within ${MAXIM_PARITY_TOLERANCE} (${SIDE}x${SIDE}, random and the package's photo)`, () => {
  it('lists all seven packages', () => {
    expect(MAXIM.map((m) => m.name).sort()).toEqual([
      'maxim-deblurring', 'maxim-dehazing-indoor', 'maxim-dehazing-outdoor', 'maxim-denoising', 'maxim-deraining', 'maxim-enhancement', 'maxim-retouching',
    ]);
  });

  for (const entry of MAXIM) {
    it(entry.name, async () => {
      const modelJson = shippedModelJsonPath(entry);
      const converted = await convertTfjsGraphModel(modelJson, { height: SIDE, width: SIDE });
      // Shapes fold away: what is left is math on the image.
      for (const op of ['Shape', 'Range', 'ConstantOfShape', 'Einsum']) expect(converted.opCounts[op] ?? 0, op).toBe(0);
      expect(converted.opCounts.MatMul).toBeGreaterThan(400);
      // Every layer norm and GELU fused into one op (fuse.ts): 240/152 (two-stage), 372/240 (three-stage).
      expect(converted.layerNorms).toBeGreaterThanOrEqual(240);
      expect(converted.opCounts.LayerNormalization).toBe(converted.layerNorms);
      expect(converted.gelus).toBeGreaterThanOrEqual(152);
      expect(converted.opCounts.FastGelu).toBe(converted.gelus);
      expect(converted.opCounts.Tanh ?? 0).toBe(0);
      expect(converted.scale).toBe(1);
      const inputs = [seededImage(7), await fixtureImage(entry.package)];
      const [reference, ours] = await Promise.all([runTfjs(modelJson, inputs), runOnnx(converted.bytes, inputs)]);
      for (let k = 0; k < inputs.length; k++) {
        const c = closeness(ours[k]!, reference[k]!, MAXIM_PARITY_TOLERANCE, 0);
        expect(c.ok, `${k === 0 ? 'random' : 'fixture'} input: ${describeCloseness(c, ours[k]!, reference[k]!)}`).toBe(true);
        // The model did something: the output is not the input.
        expect(maxAbsDiff(ours[k]!, inputs[k]!)).toBeGreaterThan(0.01);
      }
      const at128 = await convertTfjsGraphModel(modelJson, { height: 128, width: 128 });
      expect(Math.round(at128.macs / 128 / 128)).toBe(entry.macsPerOutputPixel);
    }, 240_000);
  }
});
