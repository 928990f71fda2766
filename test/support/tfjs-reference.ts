/**
 * Runs an @upscalerjs TF.js layers model with TF.js itself, as the reference the ONNX
 * conversion is checked against. Deliberately shares no code with server/models/tfjs: weights
 * go to tf.loadLayersModel through a tiny file-reading IOHandler (the `upscaler` package needs
 * browser workarounds in Node), and custom layers come from the package's own `setup(tf)`.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';

export type Tfjs = typeof TF;

/**
 * How closely the ONNX conversions of the shipped models match TF.js: the largest |ONNX − TF.js|
 * over a whole output (values in 0..1). test/models/esrgan-parity.test.ts asserts it on every
 * model; tools/tfjs-parity.ts checks it on larger crops; the README quotes it.
 */
export const ESRGAN_PARITY_TOLERANCE = 3e-6;

export interface TfjsBackendInfo {
  readonly tf: Tfjs;
  readonly backend: string;
  readonly note: string;
}

/** wasm (SIMD, one thread in Node) when it starts, else the pure-JS cpu backend. */
export async function loadTfjs(prefer: 'wasm' | 'cpu' = 'wasm'): Promise<TfjsBackendInfo> {
  const tf = await import('@tensorflow/tfjs');
  if (prefer === 'wasm') {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const require = createRequire(import.meta.url);
      const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
      wasm.setWasmPaths(dist + path.sep);
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return { tf, backend: 'wasm', note: `wasm (simd ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}, ${wasm.getThreadsCount()} thread)` };
      }
    } catch (err) {
      await tf.setBackend('cpu');
      return { tf, backend: 'cpu', note: `cpu (wasm failed: ${(err as Error).message})` };
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return { tf, backend: 'cpu', note: prefer === 'cpu' ? 'cpu' : 'cpu (wasm backend did not start)' };
}

export interface PackageDefinition {
  readonly inputRange: [number, number];
  readonly outputRange: [number, number];
  readonly setup?: (tf: Tfjs) => void;
}

/** The package's own CJS model definition (`@upscalerjs/esrgan-thick/4x`), as upscaler uses it. */
export function packageDefinition(pkg: string, scale: number): PackageDefinition {
  const require = createRequire(import.meta.url);
  return require(`${pkg}/${scale}x`) as PackageDefinition;
}

export async function loadTfjsModel(tf: Tfjs, modelJson: string, def: PackageDefinition): Promise<TF.LayersModel> {
  def.setup?.(tf);
  const json = JSON.parse(await readFile(modelJson, 'utf8'));
  const specs: TF.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(await readFile(path.join(path.dirname(modelJson), p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadLayersModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
    }),
  });
}

/**
 * Runs `model` on an NCHW 0..1 image the way upscaler does (scale into inputRange, NHWC),
 * returning NCHW 0..1 clipped, i.e. what the ONNX model is meant to output.
 */
export function runTfjs(tf: Tfjs, model: TF.LayersModel, def: PackageDefinition, nchw: Float32Array, h: number, w: number) {
  const [ilo, ihi] = def.inputRange;
  const [olo, ohi] = def.outputRange;
  const nhwc = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) nhwc[i * 3 + c] = nchw[c * h * w + i]! * (ihi - ilo) + ilo;
  const out = tf.tidy(() => model.predict(tf.tensor4d(nhwc, [1, h, w, 3])) as TF.Tensor);
  const [, oh = 0, ow = 0, oc = 0] = out.shape;
  const data = out.dataSync() as Float32Array;
  out.dispose();
  const res = new Float32Array(oh * ow * oc);
  for (let c = 0; c < oc; c++) {
    for (let i = 0; i < oh * ow; i++) {
      const v = (data[i * oc + c]! - olo) / (ohi - olo);
      res[c * oh * ow + i] = Math.min(1, Math.max(0, v));
    }
  }
  return { data: res, dims: [1, oc, oh, ow] as const };
}
