/**
 * Writes a model to disk the way large networks need: weights of float32 optionally stored as
 * float16 (each followed by a Cast back to float32, so every op still computes in float32 and
 * onnxruntime folds the casts at load), and tensors above a size written to `<file>.data` beside
 * the model (ONNX external data), tensor by tensor, so no single protobuf approaches the 2 GB
 * limit and the weights are never copied into one buffer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toFloat16 } from '../../runtime/fp16.ts';
import { bytesOf, encodeModel, type ExternalRef, type ModelRecord, type NodeRecord, type TensorRecord } from './proto.ts';

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
export function writeModel(model: ModelRecord, file: string, opts: WriteOptions = {}): { files: string[]; bytes: number } {
  const record = opts.fp16 ? withFp16Weights(model, typeof opts.fp16 === 'function' ? opts.fp16 : keepsFloat32) : model;
  const threshold = opts.externalThreshold ?? 1024 * 1024;
  const dataFile = `${file}.data`;
  const location = path.basename(dataFile);
  const tmpData = `${dataFile}.tmp`;
  let fd: number | undefined;
  let offset = 0;
  const external = (t: TensorRecord): ExternalRef | undefined => {
    const bytes = bytesOf(t.data);
    if (bytes.byteLength < threshold) return undefined;
    fd ??= fs.openSync(tmpData, 'w');
    // 4 KiB alignment lets onnxruntime memory-map the weights.
    const start = Math.ceil(offset / 4096) * 4096;
    fs.writeSync(fd, bytes, 0, bytes.byteLength, start);
    offset = start + bytes.byteLength;
    return { location, offset: start, length: bytes.byteLength };
  };
  let encoded: Uint8Array;
  try {
    encoded = encodeModel(record, external);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
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
    if (t.dtype !== 'float32' || keep(t.name, t.data.length)) {
      initializers.push(t);
      continue;
    }
    // The Cast takes the weight's own name, so every consumer stays untouched.
    initializers.push({ name: `${t.name}.fp16`, dtype: 'float16', dims: t.dims, data: toFloat16(t.data as Float32Array) });
    casts.push({ name: `${t.name}.cast`, opType: 'Cast', inputs: [`${t.name}.fp16`], outputs: [t.name], attrs: { to: 1 } });
  }
  return { ...model, initializers, nodes: [...casts, ...model.nodes] };
}
