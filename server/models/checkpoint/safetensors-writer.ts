/**
 * Writes safetensors files, one tensor at a time: the header is computed from dtypes and shapes
 * alone, so a tensor's bytes can come from a callback and a converted checkpoint never has to be
 * in memory as a whole. Used to turn a .ckpt into safetensors, and by tests to build fixtures.
 */
import fs from 'node:fs';
import { StudioError } from '../../../nodes/api/errors.ts';
import { SAFETENSORS_DTYPES, type SafetensorsDType } from './safetensors.ts';

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Row-major little-endian bytes, or a callback that reads them when their turn comes. */
  data: Uint8Array | (() => Promise<Uint8Array>);
}

export async function writeSafetensors(file: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new StudioError('BAD_INPUT', `cannot write ${file}: duplicate or reserved tensor name '${t.name}'`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The spec pads the JSON with spaces so that the data starts 8-byte aligned.
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const handle = await fs.promises.open(file, 'w');
  try {
    await handle.write(Buffer.concat([length, json]));
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      const expected = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[t.dtype];
      if (data.byteLength !== expected) {
        throw new StudioError('BAD_INPUT', `cannot write ${file}: tensor '${t.name}' has ${data.byteLength} bytes, its ${t.dtype} shape [${t.shape.join(', ')}] needs ${expected}`);
      }
      await handle.write(data);
    }
  } finally {
    await handle.close();
  }
}
