/**
 * The converted @upscalerjs models against TF.js: stored reference values for every shipped
 * model (written by tools/tfjs-parity.ts), plus one live TF.js run so the reference stays honest.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { convertTfjsLayersModelDetailed } from '../../server/models/tfjs/convert.ts';
import { SHIPPED_MODELS, findShippedModel, shippedModelJsonPath } from '../../server/models/tfjs/shipped.ts';
import { loadFixtureCrop, type Crop } from '../support/esrgan-fixture.ts';
import { loadTfjs, loadTfjsModel, packageDefinition, runTfjs } from '../support/tfjs-reference.ts';

interface ParityEntry {
  scale: number;
  crop: Crop;
  outputDims: number[];
  maxAbsDiff: number;
  checksum: { sum: number; mean: number };
  values: Array<{ c: number; y: number; x: number; v: number }>;
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/esrgan-parity.json', import.meta.url), 'utf8')) as {
  models: Record<string, ParityEntry>;
};

async function runOnnx(bytes: Uint8Array, input: Float32Array, h: number, w: number) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const out = (await session.run({ input: new ort.Tensor('float32', input, [1, 3, h, w]) })).output!;
    return { data: out.data as Float32Array, dims: [...out.dims] };
  } finally {
    await session.release();
  }
}

describe('esrgan ONNX conversions match stored TF.js outputs', () => {
  it('has reference values for every shipped model', () => {
    expect(Object.keys(fixture.models).sort()).toEqual(SHIPPED_MODELS.map((m) => m.name).sort());
  });

  for (const [name, ref] of Object.entries(fixture.models)) {
    it(name, async () => {
      const entry = findShippedModel(name);
      const converted = await convertTfjsLayersModelDetailed(shippedModelJsonPath(entry));
      // The table's figures must be what the layer shapes say.
      expect(converted.scale).toBe(entry.scale);
      expect(Math.round(converted.macsPerOutputPixel)).toBe(entry.macsPerOutputPixel);
      expect(converted.ranges.inputRange).toEqual(name.includes('thick') ? [0, 1] : [0, 255]);
      expect(converted.opCounts.Resize).toBeUndefined(); // upsample folded into conv + DepthToSpace

      const input = await loadFixtureCrop(ref.crop);
      const out = await runOnnx(converted.bytes, input, ref.crop.height, ref.crop.width);
      expect(out.dims).toEqual(ref.outputDims);
      const [, , h = 0, w = 0] = out.dims;
      for (const { c, y, x, v } of ref.values) {
        expect(Math.abs(out.data[(c * h + y) * w + x]! - v), `${name} at c${c} y${y} x${x}`).toBeLessThanOrEqual(1e-3);
      }
      const mean = out.data.reduce((a, v) => a + v, 0) / out.data.length;
      expect(Math.abs(mean - ref.checksum.mean)).toBeLessThanOrEqual(1e-4);
      expect(ref.maxAbsDiff).toBeLessThanOrEqual(1e-3);
    });
  }
});

describe('live TF.js check', () => {
  it('esrgan-slim x2 on a 32x32 crop matches TF.js (cpu backend)', async () => {
    const entry = findShippedModel('esrgan-slim x2');
    const modelJson = shippedModelJsonPath(entry);
    const crop: Crop = { left: 48, top: 40, width: 32, height: 32 };
    const input = await loadFixtureCrop(crop);

    const { tf } = await loadTfjs('cpu');
    const def = packageDefinition(entry.package, entry.scale);
    const model = await loadTfjsModel(tf, modelJson, def);
    const ref = runTfjs(tf, model, def, input, crop.height, crop.width);
    model.dispose();

    const folded = await runOnnx(await (await convertTfjsLayersModelDetailed(modelJson)).bytes, input, 32, 32);
    const plain = await convertTfjsLayersModelDetailed(modelJson, { foldUpsample: false });
    expect(plain.opCounts.Resize).toBe(1);
    const unfolded = await runOnnx(plain.bytes, input, 32, 32);

    expect(folded.dims).toEqual([...ref.dims]);
    let diff = 0;
    let foldDiff = 0;
    for (let i = 0; i < ref.data.length; i++) {
      diff = Math.max(diff, Math.abs(folded.data[i]! - ref.data[i]!));
      foldDiff = Math.max(foldDiff, Math.abs(folded.data[i]! - unfolded.data[i]!));
    }
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(foldDiff).toBeLessThanOrEqual(1e-5);
  });
});
