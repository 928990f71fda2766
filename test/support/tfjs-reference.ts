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
  return tf.loadLayersModel(await fileHandler(modelJson));
}

/** model.json and its shards as an IOHandler's artifacts: weights in manifest order, one buffer. */
async function fileHandler(modelJson: string): Promise<TF.io.IOHandler> {
  const json = JSON.parse(await readFile(modelJson, 'utf8'));
  const specs: TF.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(await readFile(path.join(path.dirname(modelJson), p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return {
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      ...(json.signature ? { signature: json.signature } : {}),
    }),
  };
}

/**
 * Runs `model` on an NCHW 0..1 image the way upscaler does (scale into inputRange, NHWC),
 * returning NCHW 0..1 clipped, i.e. what the ONNX model is meant to output.
 */
export function runTfjs(tf: Tfjs, model: Pick<TF.LayersModel, 'predict'>, def: PackageDefinition, nchw: Float32Array, h: number, w: number) {
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

/** A TF.js graph model (the @upscalerjs MAXIM packages) from its files, as loadTfjsModel reads them. */
export async function loadTfjsGraphModel(tf: Tfjs, modelJson: string): Promise<TF.GraphModel> {
  return tf.loadGraphModel(await fileHandler(modelJson));
}

/**
 * TF.js's wasm backend has no Einsum kernel (MAXIM uses 732 of them). This registers one that
 * runs tfjs-backend-cpu's own Einsum algorithm (transpose and reshape each operand along
 * backend_util's compute path, broadcast-multiply, sum the contracted axis) on the wasm
 * backend's kernels. The cpu backend itself takes minutes for a 64x64 MAXIM run. The reference
 * stays TF.js's code; nothing of the converter is involved.
 */
export function registerWasmEinsum(tf: Tfjs): void {
  if (tf.getKernel('Einsum', 'wasm')) return;
  const kernel = (name: string) => {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`the wasm backend has no ${name} kernel`);
    return k.kernelFunc as (args: { inputs: object; backend: unknown; attrs?: object }) => TF.TensorInfo;
  };
  const [transpose, reshape, multiply, sum] = ['Transpose', 'Reshape', 'Multiply', 'Sum'].map(kernel) as [ReturnType<typeof kernel>, ReturnType<typeof kernel>, ReturnType<typeof kernel>, ReturnType<typeof kernel>];
  const { backend_util: bu, util } = tf;
  tf.registerKernel({
    kernelName: 'Einsum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const tensors = inputs as unknown as TF.TensorInfo[];
      const { equation } = attrs as unknown as { equation: string };
      const { allDims, summedDims, idDims } = bu.decodeEinsumEquation(equation, tensors.length);
      bu.checkEinsumDimSizes(allDims.length, idDims, tensors as TF.Tensor[]);
      const { path: order, steps } = bu.getEinsumComputePath(summedDims, idDims);
      let out: TF.TensorInfo | null = null;
      let remaining = allDims.length;
      const temps: TF.TensorInfo[] = [];
      for (let i = 0; i < steps.length; ++i) {
        for (const term of steps[i]!) {
          const { permutationIndices: perm, expandDims } = bu.getEinsumPermutation(remaining, idDims[term]!);
          let x = tensors[term]!;
          if (!bu.isIdentityPermutation(perm)) temps.push((x = transpose({ inputs: { x }, backend, attrs: { perm } })));
          const target = x.shape.slice();
          for (const d of expandDims) target.splice(d, 0, 1);
          if (!util.arraysEqual(x.shape, target)) temps.push((x = reshape({ inputs: { x }, backend, attrs: { shape: target } })));
          if (out === null) out = x;
          else temps.push((out = multiply({ inputs: { a: x, b: out }, backend })));
        }
        if (i < steps.length - 1) {
          if (order[i]! >= 0) {
            temps.push((out = sum({ inputs: { x: out }, backend, attrs: { axis: order[i]! - (allDims.length - remaining), keepDims: false } })));
          }
          remaining--;
        }
      }
      const b = backend as unknown as { disposeData(id: object): void };
      for (const t of temps) if (t !== out) b.disposeData(t.dataId);
      return out!;
    },
  });
}
