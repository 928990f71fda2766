/**
 * Opens a golden case from /work/shared/golden (produced by the official SUPIR code, see its
 * README): `<case>.json` plus every tensor of `<case>.io.safetensors`, read eagerly so tests can
 * look tensors up synchronously. Also loads whole weight files as a `Weights` map.
 * Arrays are compared with `close.ts`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { weightsFromMap, type Weights, type WeightTensor } from '../../server/models/onnx/layers.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const GOLDEN_DIR = path.resolve(REPO_ROOT, '../shared/golden');

export interface GoldenTensor {
  data: Float32Array;
  dims: number[];
}

/** The per-case json: the fields every case has, plus free-form extras (call, per_step, ...). */
export interface GoldenJson {
  description: string;
  tolerance: { atol: number; rtol: number; [k: string]: unknown };
  tensors: Record<string, { role: string; dtype: string; shape: number[]; desc?: string }>;
  [k: string]: unknown;
}

export interface GoldenCase {
  name: string;
  json: GoldenJson;
  has(name: string): boolean;
  /** A float tensor as float32 (F64 tensors are rounded; use float64 for them). */
  tensor(name: string): GoldenTensor;
  float64(name: string): Float64Array;
  /** An I64 tensor as plain numbers. */
  ints(name: string): number[];
  names(): string[];
}

interface RawEntry {
  dtype: string;
  dims: number[];
  bytes: Uint8Array;
}

export async function loadGolden(name: string): Promise<GoldenCase> {
  const json = JSON.parse(await readFile(path.join(GOLDEN_DIR, `${name}.json`), 'utf8')) as GoldenJson;
  const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, `${name}.io.safetensors`));
  const raw = new Map<string, RawEntry>();
  try {
    for (const key of file.keys()) {
      const e = file.entry(key);
      raw.set(key, { dtype: e.dtype, dims: e.shape, bytes: (await file.bytes(key)).slice() });
    }
  } finally {
    await file.close();
  }
  const get = (key: string): RawEntry => {
    const e = raw.get(key);
    if (!e) throw new Error(`golden case '${name}' has no tensor '${key}'`);
    return e;
  };
  return {
    name,
    json,
    has: (key) => raw.has(key),
    names: () => [...raw.keys()],
    tensor(key) {
      const e = get(key);
      if (e.dtype === 'F32') return { data: new Float32Array(e.bytes.buffer.slice(0)), dims: e.dims };
      if (e.dtype === 'F64') return { data: Float32Array.from(new Float64Array(e.bytes.buffer.slice(0))), dims: e.dims };
      throw new Error(`golden tensor '${key}' is ${e.dtype}, not a float tensor`);
    },
    float64(key) {
      const e = get(key);
      if (e.dtype !== 'F64') throw new Error(`golden tensor '${key}' is ${e.dtype}, not F64`);
      return new Float64Array(e.bytes.buffer.slice(0));
    },
    ints(key) {
      const e = get(key);
      if (e.dtype !== 'I64') throw new Error(`golden tensor '${key}' is ${e.dtype}, not I64`);
      return Array.from(new BigInt64Array(e.bytes.buffer.slice(0)), Number);
    },
  };
}

/** Every float tensor of a golden weight file (optionally only keys with one of `prefixes`). */
export async function loadGoldenWeights(fileName: string, prefixes?: string[]): Promise<Weights> {
  const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, fileName));
  const map = new Map<string, WeightTensor>();
  try {
    for (const key of file.keys()) {
      if (prefixes && !prefixes.some((p) => key.startsWith(p))) continue;
      const { dtype, shape } = file.entry(key);
      if (dtype === 'I64' || dtype === 'I32') continue;
      map.set(key, { data: await file.float32(key), dims: shape });
    }
  } finally {
    await file.close();
  }
  return weightsFromMap(map, fileName);
}
