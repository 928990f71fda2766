/**
 * Writes a model to disk the way large networks need: optionally in half precision (half.ts:
 * float16 weights and float16 compute, float32 where the numerics need it), and tensors above a
 * size written to `<file>.data` beside the model (ONNX external data), so no single protobuf
 * approaches the 2 GB limit.
 *
 * Weights stream: an external tensor is read (lazy ones from their checkpoint), converted,
 * written and dropped before the next is read, so the memory a model takes to write is its
 * largest external tensor plus what stays inside the protobuf, not the sum of its weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toHalfPrecision } from './half.ts';
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
  /** Rewrite the model to compute in float16 (see half.ts); its interface stays float32. */
  fp16?: boolean;
  /** Tensors of at least this many bytes go to the external data file (default 1 MiB); Infinity keeps all inside. */
  externalThreshold?: number;
}

/** Writes `file` (and `file.data` when any tensor is external); returns the files written. */
export async function writeModel(model: ModelRecord, file: string, opts: WriteOptions = {}): Promise<{ files: string[]; bytes: number }> {
  const record = opts.fp16 ? toHalfPrecision(model) : model;
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
