/**
 * The TF.js → ONNX converter beyond the shipped models: the upsample fold on its own, a small
 * synthetic Keras model exercising the layer options the shipped ones do not (strides, even
 * kernels, dilation, LeakyReLU, shared upsample...), bad files, and the shipped-model cache.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { StudioError } from '../../nodes/api/errors.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { foldUpsampleWeights } from '../../server/models/tfjs/conv.ts';
import { CONVERTER_VERSION, convertTfjsLayersModel, convertTfjsLayersModelDetailed } from '../../server/models/tfjs/convert.ts';
import { ensureShippedModel, findShippedModel, shippedModelJsonPath } from '../../server/models/tfjs/shipped.ts';
import { loadTfjs } from '../support/tfjs-reference.ts';
import { maxAbsDiff } from '../support/close.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tfjs-convert-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = lo + ((hi - lo) * s) / 2 ** 31;
  }
  return out;
}

async function run(bytes: Uint8Array, input: Float32Array, dims: number[]) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, dims) };
    const out = (await session.run(feeds))[session.outputNames[0]!]!;
    return { data: out.data as Float32Array, dims: [...out.dims] };
  } finally {
    await session.release();
  }
}


describe('nearest upsample + conv fold', () => {
  const cases = [
    { s: 2, kh: 3, kw: 3 },
    { s: 3, kh: 3, kw: 3 },
    { s: 4, kh: 3, kw: 3 },
    { s: 2, kh: 5, kw: 5 },
    { s: 3, kh: 3, kw: 5 },
    { s: 2, kh: 1, kw: 1 },
  ];
  for (const { s, kh, kw } of cases) {
    it(`x${s} with a ${kh}x${kw} kernel equals Resize + Conv`, async () => {
      const [cin, cout, h, w] = [5, 3, 7, 6];
      const weight = random(cout * cin * kh * kw, 7 * s + kh);
      const bias = random(cout, 3);
      const x = random(cin * h * w, 11);
      const [rh, rw] = [(kh - 1) / 2, (kw - 1) / 2];

      const a = new GraphBuilder({ name: 'resize-conv' });
      const ia = a.input('x', 'float32', [1, cin, h, w]);
      const up = a.op('Resize', [ia, null, a.constant(Float32Array.of(1, 1, s, s), [4])], {
        mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric',
      });
      const ya = a.op('Conv', [up, a.initializer('w', weight, [cout, cin, kh, kw]), a.initializer('b', bias, [cout])], { pads: [rh, rw, rh, rw] });
      a.output(ya, 'y', 'float32', [1, cout, h * s, w * s]);

      const folded = foldUpsampleWeights(weight, cout, cin, kh, kw, s);
      const b = new GraphBuilder({ name: 'folded' });
      const ib = b.input('x', 'float32', [1, cin, h, w]);
      const bb = new Float32Array(cout * s * s).map((_, i) => bias[i % cout]!);
      const [fh, fw] = [(folded.kh - 1) / 2, (folded.kw - 1) / 2];
      const low = b.op('Conv', [ib, b.initializer('w', folded.weight, [cout * s * s, cin, folded.kh, folded.kw]), b.initializer('b', bb, [cout * s * s])], { pads: [fh, fw, fh, fw] });
      b.output(b.op('DepthToSpace', [low], { blocksize: s, mode: 'DCR' }), 'y', 'float32', [1, cout, h * s, w * s]);

      const ra = await run(a.toBytes(), x, [1, cin, h, w]);
      const rb = await run(b.toBytes(), x, [1, cin, h, w]);
      expect(rb.dims).toEqual(ra.dims);
      expect(maxAbsDiff(ra.data, rb.data)).toBeLessThan(1e-5);
    });
  }
});

/** Saves a TF.js model as model.json + one shard, the way tfjs-converter lays them out. */
async function saveTfjs(model: { save: (h: unknown) => Promise<unknown> }, tf: Awaited<ReturnType<typeof loadTfjs>>['tf'], dir: string) {
  await mkdir(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const json = { format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] };
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(artifacts.weightData as ArrayBuffer));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return path.join(dir, 'model.json');
}

describe('synthetic Keras models against TF.js', () => {
  it('covers strides, even kernels, dilation, activations, LeakyReLU, shared and folded upsamples', async () => {
    const { tf } = await loadTfjs('cpu');
    const L = tf.layers;
    const init = { biasInitializer: 'randomNormal' as const };

    // A: odd input sizes, where TF's 'same' padding is asymmetric (stride 2, even kernel).
    const ia = tf.input({ shape: [null, null, 3] });
    let t = L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'stride2', ...init }).apply(ia);
    t = L.conv2d({ filters: 5, kernelSize: 4, padding: 'same', activation: 'sigmoid', name: 'even4', ...init }).apply(t);
    t = L.conv2d({ filters: 3, kernelSize: [2, 3], padding: 'valid', name: 'valid23', ...init }).apply(t);
    const modelA = tf.model({ inputs: ia, outputs: t as never });

    // B: even sizes; upsample read by an Add (materialised) and a shared upsample (two readers).
    const ib = tf.input({ shape: [null, null, 3] });
    const a = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', ...init }).apply(ib);
    const c = L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', name: 'down', ...init }).apply(a);
    const up = L.upSampling2d({ size: [2, 2], name: 'up2' }).apply(c);
    const proj = L.conv2d({ filters: 8, kernelSize: 1, name: 'proj', ...init }).apply(a);
    let f = L.add({ name: 'sum' }).apply([up, proj] as never);
    f = L.leakyReLU({ alpha: 0.1, name: 'leaky' }).apply(f);
    const dil = L.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'dil', ...init }).apply(f);
    const cat = L.concatenate({ axis: -1, name: 'cat' }).apply([dil, a] as never);
    const up3 = L.upSampling2d({ size: [3, 3], name: 'up3' }).apply(cat);
    const o1 = L.conv2d({ filters: 3, kernelSize: 5, padding: 'same', name: 'o1', ...init }).apply(up3);
    const o2 = L.conv2d({ filters: 3, kernelSize: 1, name: 'o2', ...init }).apply(up3);
    const outB = L.multiply({ name: 'mul' }).apply([o1, o2] as never);
    const modelB = tf.model({ inputs: ib, outputs: outB as never });

    // C: an upsample whose only reader is a conv: folded.
    const ic = tf.input({ shape: [null, null, 3] });
    const upc = L.upSampling2d({ size: [3, 3], name: 'up3c' }).apply(L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'pre', ...init }).apply(ic));
    const modelC = tf.model({ inputs: ic, outputs: L.conv2d({ filters: 3, kernelSize: 5, padding: 'same', name: 'post', ...init }).apply(upc) as never });

    for (const [name, model, h, w] of [['A', modelA, 11, 13], ['B', modelB, 10, 12], ['C', modelC, 9, 7]] as const) {
      const file = await saveTfjs(model as never, tf, path.join(tmp, `synthetic-${name}`));
      const converted = await convertTfjsLayersModelDetailed(file);
      expect(converted.ranges.source).toBe('default');
      if (name === 'B') expect(converted.opCounts.Resize).toBe(2);
      if (name === 'C') expect(converted.opCounts.Resize).toBeUndefined();

      const x = random(3 * h * w, 5, 0, 1);
      const nhwc = new Float32Array(x.length);
      for (let c2 = 0; c2 < 3; c2++) for (let i = 0; i < h * w; i++) nhwc[i * 3 + c2] = x[c2 * h * w + i]!;
      const ref = model.predict(tf.tensor4d(nhwc, [1, h, w, 3])) as import('@tensorflow/tfjs').Tensor;
      const [, oh = 0, ow = 0, oc = 0] = ref.shape;
      const refData = ref.dataSync();
      const expected = new Float32Array(refData.length);
      for (let c2 = 0; c2 < oc; c2++) for (let i = 0; i < oh * ow; i++) expected[c2 * oh * ow + i] = Math.min(1, Math.max(0, refData[i * oc + c2]!));

      const out = await run(converted.bytes, x, [1, 3, h, w]);
      expect(out.dims, `model ${name}`).toEqual([1, oc, oh, ow]);
      expect(maxAbsDiff(out.data, expected), `model ${name}`).toBeLessThan(1e-5);
    }
  });
});

describe('residual scaling fold (esrgan-thick)', () => {
  const thickX2 = () => shippedModelJsonPath(findShippedModel('esrgan-thick x2'));
  const [h, w] = [10, 9];
  const x = random(3 * h * w, 17, 0, 1);

  it('folds MultiplyBeta into the conv it reads and makes the others 1x1 depthwise convs: no Mul left', async () => {
    const plain = await convertTfjsLayersModelDetailed(thickX2(), { foldScale: false });
    const folded = await convertTfjsLayersModelDetailed(thickX2());
    expect(plain.opCounts.Mul).toBe(40); // 30 after an RDB's last conv, 10 after an RRDB's Add
    expect(folded.opCounts.Mul).toBeUndefined();
    expect(folded.opCounts.Conv).toBe(plain.opCounts.Conv! + 10);
    expect(folded.macsPerOutputPixel).toBe(plain.macsPerOutputPixel);
    const a = await run(plain.bytes, x, [1, 3, h, w]);
    const b = await run(folded.bytes, x, [1, 3, h, w]);
    expect(b.dims).toEqual(a.dims);
    expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-6);
  });

  it('leaves the weights of a conv that another layer reads as well', async () => {
    const dir = path.join(tmp, 'thick-shared-conv');
    await mkdir(dir, { recursive: true });
    const src = path.dirname(thickX2());
    for (const f of await readdir(src)) if (f.endsWith('.bin')) await copyFile(path.join(src, f), path.join(dir, f));
    const json = JSON.parse(await readFile(thickX2(), 'utf8'));
    const layers = json.modelTopology.model_config.config.layers as Array<{ name: string; inbound_nodes: unknown[][] }>;
    // LRL_1_1 = Pre_blocks_conv + β·LFF_1_1 + LFF_1_1: LFF_1_1 now has two readers.
    layers.find((l) => l.name === 'LRL_1_1')!.inbound_nodes[0]!.push(['LFF_1_1', 0, 0, {}]);
    const file = path.join(dir, 'model.json');
    await writeFile(file, JSON.stringify(json));
    const plain = await convertTfjsLayersModelDetailed(file, { foldScale: false });
    const folded = await convertTfjsLayersModelDetailed(file);
    expect(folded.opCounts.Conv).toBe(plain.opCounts.Conv! + 11);
    const a = await run(plain.bytes, x, [1, 3, h, w]);
    const b = await run(folded.bytes, x, [1, 3, h, w]);
    expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-6);
  });
});

describe('bad model files', () => {
  const slimX2 = () => shippedModelJsonPath(findShippedModel('esrgan-slim x2'));

  async function expectStudioError(promise: Promise<unknown>, code: string, ...parts: string[]) {
    const err = await promise.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe(code);
    for (const p of parts) expect((err as StudioError).message).toContain(p);
  }

  it('reports a corrupt model.json with its path', async () => {
    const file = path.join(tmp, 'corrupt', 'model.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '{"modelTopology": {"model_config": ');
    await expectStudioError(convertTfjsLayersModel(file), 'BAD_INPUT', file, 'not valid JSON');
    await writeFile(file, '{"format": "graph-model", "modelTopology": {}}');
    await expectStudioError(convertTfjsLayersModel(file), 'BAD_INPUT', file, 'graph-model');
  });

  it('reports a missing model.json', async () => {
    const file = path.join(tmp, 'nowhere', 'model.json');
    await expectStudioError(convertTfjsLayersModel(file), 'NOT_FOUND', file);
  });

  it('reports a missing or short shard, naming shard and model', async () => {
    const dir = path.join(tmp, 'no-shard');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'model.json');
    await copyFile(slimX2(), file);
    await expectStudioError(convertTfjsLayersModel(file), 'NOT_FOUND', file, 'group1-shard1of1.bin');
    const shard = await readFile(path.join(path.dirname(slimX2()), 'group1-shard1of1.bin'));
    await writeFile(path.join(dir, 'group1-shard1of1.bin'), shard.subarray(0, 10_000));
    await expectStudioError(convertTfjsLayersModel(file), 'BAD_INPUT', file, 'end before weight');
  });

  it('names an unknown layer type, an unknown activation and the file', async () => {
    const dir = path.join(tmp, 'unknown-layer');
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(path.dirname(slimX2()), 'group1-shard1of1.bin'), path.join(dir, 'group1-shard1of1.bin'));
    const json = JSON.parse(await readFile(slimX2(), 'utf8'));
    const layers = json.modelTopology.model_config.config.layers as Array<{ name: string; class_name: string; config: Record<string, unknown> }>;
    const file = path.join(dir, 'model.json');

    layers.find((l) => l.name === 'UPN1_Relu')!.class_name = 'Swizzle2D';
    await writeFile(file, JSON.stringify(json));
    await expectStudioError(convertTfjsLayersModel(file), 'BAD_INPUT', file, "'UPN1_Relu' (Swizzle2D)");

    layers.find((l) => l.name === 'UPN1_Relu')!.class_name = 'Activation';
    layers.find((l) => l.name === 'UPN2')!.config.activation = 'gelu_fancy';
    await writeFile(file, JSON.stringify(json));
    await expectStudioError(convertTfjsLayersModel(file), 'BAD_INPUT', file, "'UPN2'", 'gelu_fancy');
  });
});

describe('shipped models', () => {
  it('converts on first use, caches by package and converter version and hashes the file', async () => {
    const modelsDir = path.join(tmp, 'models');
    const [first, concurrent] = await Promise.all([
      ensureShippedModel('esrgan-slim x2', modelsDir),
      ensureShippedModel('esrgan-slim x2', modelsDir),
    ]);
    const name = `esrgan-slim-1.0.0-c${CONVERTER_VERSION}-x2.onnx`;
    expect(first.path).toBe(path.join(modelsDir, 'shipped', name));
    expect(concurrent).toEqual(first);
    const bytes = await readFile(first.path);
    expect(first.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(await readdir(path.dirname(first.path))).toEqual([name]);
    expect(await ensureShippedModel('esrgan-slim x2', modelsDir)).toEqual(first);
    // Conversion is deterministic, so a fresh cache gives the same hash.
    expect((await ensureShippedModel('esrgan-slim x2', path.join(tmp, 'models2'))).hash).toBe(first.hash);
  });

  it('rejects an unknown name with the list of shipped ones', async () => {
    await expect(ensureShippedModel('esrgan-huge x4', tmp)).rejects.toThrow(/esrgan-slim x2/);
  });
});
