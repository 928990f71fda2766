/**
 * Writes a model to disk the way large networks need: weights of float32 optionally stored as
 * float16 (each followed by a Cast back to float32, so every op still computes in float32 and
 * onnxruntime folds the casts at load), and tensors above a size written to `<file>.data` beside
 * the model (ONNX external data), so no single protobuf approaches the 2 GB limit.
 *
 * Weights stream: an external tensor is read (lazy ones from their checkpoint), converted,
 * written and dropped before the next is read, so the memory a model takes to write is its
 * largest external tensor plus what stays inside the protobuf, not the sum of its weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toFloat16 } from '../../runtime/fp16.ts';
import {
  bytesOf,
  DTYPE_BYTES,
  elementCount,
  encodeModel,
  isLazy,
  resolveTensorData,
  type ExternalRef,
  type LazyTensorData,
  type ModelRecord,
  type NodeRecord,
  type TensorRecord,
} from './proto.ts';

export interface WriteOptions {
  /** Store float32 weights as float16, except those `keep` names (norms, small tensors by default). */
  fp16?: boolean | ((name: string, size: number) => boolean);
  /** Tensors of at least this many bytes go to the external data file (default 1 MiB); Infinity keeps all inside. */
  externalThreshold?: number;
}

/** Norm parameters and tensors under 1024 values keep float32: no saving there, and precision matters. */
export function keepsFloat32(name: string, size: number): boolean {
  return size < 1024 || /(^|\.)(norm\w*|ln_\w+|layer_norm\w*|final_layer_norm)\./.test(`${name}.`);
}

/** Writes `file` (and `file.data` when any tensor is external); returns the files written. */
export async function writeModel(model: ModelRecord, file: string, opts: WriteOptions = {}): Promise<{ files: string[]; bytes: number }> {
  const record = opts.fp16 ? withFp16Weights(model, typeof opts.fp16 === 'function' ? opts.fp16 : keepsFloat32) : model;
  const threshold = opts.externalThreshold ?? 1024 * 1024;
  const dataFile = `${file}.data`;
  const location = path.basename(dataFile);
  const tmpData = `${dataFile}.tmp`;
  let fd: number | undefined;
  let offset = 0;
  const refs = new Map<string, ExternalRef>();
  const initializers: TensorRecord[] = [];
  try {
    // In the protobuf's order, so offsets in the data file are those an in-order encoder gives.
    for (const t of record.initializers) {
      const byteLength = elementCount(t.dims) * DTYPE_BYTES[t.dtype];
      if (byteLength < threshold) {
        // Stays inside the protobuf, so its values are needed until it is encoded.
        initializers.push(isLazy(t.data) ? { ...t, data: await resolveTensorData(t.data, `initializer '${t.name}'`) } : t);
        continue;
      }
      const bytes = bytesOf(await resolveTensorData(t.data, `initializer '${t.name}'`));
      fd ??= fs.openSync(tmpData, 'w');
      // 4 KiB alignment lets onnxruntime memory-map the weights.
      const start = Math.ceil(offset / 4096) * 4096;
      fs.writeSync(fd, bytes, 0, bytes.byteLength, start);
      offset = start + bytes.byteLength;
      refs.set(t.name, { location, offset: start, length: bytes.byteLength });
      // The record keeps only what it had (lazy data stays a reader): the bytes are dropped here.
      initializers.push(t);
    }
  } catch (err) {
    // A failed read (a changed or truncated checkpoint) leaves no half-written data file behind.
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmpData, { force: true });
    throw err;
  }
  if (fd !== undefined) fs.closeSync(fd);
  const encoded = encodeModel({ ...record, initializers }, (t) => refs.get(t.name));
  const files = [file];
  if (fd !== undefined) {
    fs.renameSync(tmpData, dataFile);
    files.push(dataFile);
  } else {
    fs.rmSync(dataFile, { force: true });
  }
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, encoded);
  fs.renameSync(tmp, file);
  return { files, bytes: encoded.byteLength + offset };
}

function withFp16Weights(model: ModelRecord, keep: (name: string, size: number) => boolean): ModelRecord {
  const initializers: TensorRecord[] = [];
  const casts: NodeRecord[] = [];
  for (const t of model.initializers) {
    if (t.dtype !== 'float32' || keep(t.name, elementCount(t.dims))) {
      initializers.push(t);
      continue;
    }
    // The Cast takes the weight's own name, so every consumer stays untouched.
    initializers.push({ name: `${t.name}.fp16`, dtype: 'float16', dims: t.dims, data: halved(t) });
    casts.push({ name: `${t.name}.cast`, opType: 'Cast', inputs: [`${t.name}.fp16`], outputs: [t.name], attrs: { to: 1 } });
  }
  return { ...model, initializers, nodes: [...casts, ...model.nodes] };
}

/** The float16 copy of a float32 weight, made only when the writer reads it (one at a time). */
function halved(t: TensorRecord): LazyTensorData {
  const data = t.data;
  return {
    lazy: true,
    dtype: 'float16',
    dims: t.dims,
    read: async () => toFloat16((await resolveTensorData(data, `initializer '${t.name}'`)) as Float32Array),
  };
}
