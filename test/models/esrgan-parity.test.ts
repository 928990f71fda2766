/**
 * The converted @upscalerjs models against TensorFlow.js itself, live, every shipped model: the
 * whole ONNX output of a 24x24 crop of the package's fixture image must match TF.js (wasm
 * backend) to within TOLERANCE at every value. 24x24 keeps all twelve models at about 5 s on a
 * 2-core machine (esrgan-thick, the slowest, about 1 s each with loading and conversion), while
 * every output still has borders (padding) and an inside, and the x8 models give 192x192.
 * tools/tfjs-parity.ts prints the same comparison on larger crops, with timings.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { convertTfjsLayersModelDetailed } from '../../server/models/tfjs/convert.ts';
import { SHIPPED_MODELS, shippedModelJsonPath } from '../../server/models/tfjs/shipped.ts';
import { loadFixtureCrop, type Crop } from '../support/esrgan-fixture.ts';
import { ESRGAN_PARITY_TOLERANCE, loadTfjs, loadTfjsModel, packageDefinition, runTfjs, type TfjsBackendInfo } from '../support/tfjs-reference.ts';

/** What the README claims: the largest |ONNX − TF.js| over a whole output, outputs in 0..1. */
const TOLERANCE = ESRGAN_PARITY_TOLERANCE;
/** An inner crop with texture (edges and flat parts) of the 128x128 fixture. */
const CROP: Crop = { left: 40, top: 52, width: 24, height: 24 };

async function runOnnx(bytes: Uint8Array, input: Float32Array, h: number, w: number) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const out = (await session.run({ input: new ort.Tensor('float32', input, [1, 3, h, w]) })).output!;
    return { data: out.data as Float32Array, dims: [...out.dims] };
  } finally {
    await session.release();
  }
}

/** The largest absolute difference over every value, and where. */
function maxAbsDiff(a: Float32Array, b: Float32Array): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    // NaN fails too: it is never <= max.
    if (!(d <= max)) {
      max = Number.isNaN(d) ? Infinity : d;
      at = i;
    }
  }
  return { max, at };
}

let tfjs: Promise<TfjsBackendInfo> | undefined;
const input = loadFixtureCrop(CROP);

describe(`shipped ESRGAN models: the whole ONNX output matches TF.js within ${TOLERANCE} (${CROP.width}x${CROP.height} crop, live)`, () => {
  it('runs TF.js on its wasm backend', async () => {
    tfjs ??= loadTfjs('wasm');
    const { backend, note } = await tfjs;
    expect(backend, note).toBe('wasm');
  });

  for (const entry of SHIPPED_MODELS.filter((m) => !m.tileMultiple)) {
    it(entry.name, async () => {
      tfjs ??= loadTfjs('wasm');
      const { tf } = await tfjs;
      const modelJson = shippedModelJsonPath(entry);
      const converted = await convertTfjsLayersModelDetailed(modelJson);
      // The table's figures must be what the layer shapes say.
      expect(converted.scale).toBe(entry.scale);
      expect(Math.round(converted.macsPerOutputPixel)).toBe(entry.macsPerOutputPixel);
      expect(converted.ranges.inputRange).toEqual(entry.name.includes('thick') ? [0, 1] : [0, 255]);
      expect(converted.opCounts.Resize).toBeUndefined(); // upsample folded into conv + DepthToSpace

      const x = await input;
      const def = packageDefinition(entry.package, entry.scale);
      const model = await loadTfjsModel(tf, modelJson, def);
      const ref = runTfjs(tf, model, def, x, CROP.height, CROP.width);
      model.dispose();
      const out = await runOnnx(converted.bytes, x, CROP.height, CROP.width);

      expect(out.dims).toEqual([1, 3, CROP.height * entry.scale, CROP.width * entry.scale]);
      expect(out.dims).toEqual([...ref.dims]);
      const { max, at } = maxAbsDiff(out.data, ref.data);
      console.log(`${entry.name}: max |onnx − tfjs| ${max.toExponential(2)} over ${out.data.length} values`);
      expect(max, `${entry.name}: largest difference at flat index ${at} (onnx ${out.data[at]}, tfjs ${ref.data[at]})`).toBeLessThanOrEqual(TOLERANCE);

      if (entry.name === 'esrgan-slim x2') {
        // The unfolded conversion (nearest Resize, as the Keras graph has it) matches as well.
        const plain = await convertTfjsLayersModelDetailed(modelJson, { foldUpsample: false });
        expect(plain.opCounts.Resize).toBe(1);
        const unfolded = await runOnnx(plain.bytes, x, CROP.height, CROP.width);
        expect(maxAbsDiff(unfolded.data, ref.data).max).toBeLessThanOrEqual(TOLERANCE);
      }
    }, 120_000);
  }
});
