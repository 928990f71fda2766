/**
 * Loads the weight shards of a TF.js model into float32 arrays, keyed by weight name
 * (`<layer>/kernel`). Each manifest group is one byte stream split over its shard files, with
 * the weights packed back to back in manifest order.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StudioError } from '../../../nodes/api/errors.ts';
import { badModel, type KerasModel, type WeightSpec } from './manifest.ts';

export interface Weight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const QUANT_BYTES = { uint8: 1, uint16: 2, float16: 2 } as const;

export async function readWeights(model: Pick<KerasModel, 'file' | 'groups'>): Promise<Map<string, Weight>> {
  const out = new Map<string, Weight>();
  await forEachWeight(model, (spec, bytes, count) => out.set(spec.name, { shape: spec.shape, data: decode(spec, bytes, count) }));
  return out;
}

/**
 * Walks every weight of every manifest group with its raw bytes (little-endian, unaligned) and
 * element count; a short shard set fails naming the weight it ends before.
 */
export async function forEachWeight(
  model: Pick<KerasModel, 'file' | 'groups'>,
  visit: (spec: WeightSpec, bytes: Uint8Array, count: number) => void,
): Promise<void> {
  const dir = path.dirname(model.file);
  for (const group of model.groups) {
    const parts = await Promise.all(group.paths.map((p) => readShard(model.file, path.join(dir, p))));
    const bytes = concat(parts);
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, d) => a * d, 1);
      const size = count * (spec.quantization ? QUANT_BYTES[spec.quantization.dtype] : 4);
      if (offset + size > bytes.byteLength) {
        throw badModel(model.file, `shards [${group.paths.join(', ')}] end before weight '${spec.name}' (${bytes.byteLength} bytes, need ${offset + size})`);
      }
      visit(spec, bytes.subarray(offset, offset + size), count);
      offset += size;
    }
  }
}

async function readShard(modelFile: string, shard: string): Promise<Uint8Array> {
  try {
    return await readFile(shard);
  } catch {
    throw new StudioError('NOT_FOUND', `TF.js model ${modelFile}: weight shard ${shard} is missing or unreadable`);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Copies into a fresh, aligned Float32Array (shard offsets need not be 4-byte aligned); int32 and quantised weights become their float values. */
export function decode(spec: WeightSpec, bytes: Uint8Array, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const q = spec.quantization;
  if (!q) {
    if (spec.dtype === 'int32') for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
    else for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (q.dtype === 'float16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    // Affine quantisation as tfjs-core's io.decodeWeights does it: value = q * scale + min.
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    for (let i = 0; i < count; i++) {
      const v = q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(i * 2, true);
      out[i] = v * scale + min;
    }
  }
  return out;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
