/**
 * safetensors, read lazily: the header is parsed once, each tensor is read from its byte range on
 * demand, so a 6 GB checkpoint is never held in memory as a whole. Every offset is checked
 * against the file size and the dtype x shape before anything is read.
 */
import fs from 'node:fs';
import { StudioError } from '../../../nodes/api/errors.ts';
import { fromFloat16 } from '../../runtime/fp16.ts';

export const SAFETENSORS_DTYPES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPES;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute offset of the first byte in the file. */
  offset: number;
  byteLength: number;
}

/** A header over 100 MB is not a real one: refuse before allocating it. */
const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: fs.promises.FileHandle,
    private readonly entries: Map<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(file: string): Promise<SafetensorsFile> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      throw new StudioError('NOT_FOUND', `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const { size } = await handle.stat();
      const bad = (why: string): StudioError => new StudioError('BAD_INPUT', `${file} is not a valid safetensors file: ${why}`);
      if (size < 8) throw bad(`it has only ${size} bytes`);
      const head = Buffer.alloc(8);
      await handle.read(head, 0, 8, 0);
      const headerLength = Number(head.readBigUInt64LE(0));
      if (headerLength > MAX_HEADER || 8 + headerLength > size) throw bad(`its header claims ${headerLength} bytes`);
      const text = Buffer.alloc(headerLength);
      await handle.read(text, 0, headerLength, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        throw bad(`its header is not JSON (${(err as Error).message})`);
      }
      const dataStart = 8 + headerLength;
      const entries = new Map<string, TensorEntry>();
      let metadata: Record<string, string> = {};
      for (const [name, value] of Object.entries(header)) {
        if (name === '__metadata__') {
          metadata = (value ?? {}) as Record<string, string>;
          continue;
        }
        const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        const dtype = v.dtype as SafetensorsDType;
        if (!(typeof v.dtype === 'string' && v.dtype in SAFETENSORS_DTYPES)) throw bad(`tensor '${name}' has unknown dtype ${JSON.stringify(v.dtype)}`);
        const shape = v.shape;
        const offsets = v.data_offsets;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor '${name}' has a bad shape`);
        if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
          throw bad(`tensor '${name}' has bad data_offsets`);
        }
        const [begin, end] = offsets as [number, number];
        const expected = (shape as number[]).reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[dtype];
        if (end - begin !== expected) throw bad(`tensor '${name}' spans ${end - begin} bytes, its ${dtype} shape [${shape.join(', ')}] needs ${expected}`);
        if (dataStart + end > size) throw bad(`tensor '${name}' runs past the end of the file (truncated?)`);
        entries.set(name, { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: expected });
      }
      return new SafetensorsFile(file, handle, entries, metadata);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new StudioError('NOT_FOUND', `${this.path} has no tensor '${name}'`);
    return e;
  }

  /** The raw little-endian bytes of one tensor. */
  async bytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const out = new Uint8Array(e.byteLength);
    const { bytesRead } = await this.handle.read(out, 0, e.byteLength, e.offset);
    if (bytesRead !== e.byteLength) throw new StudioError('BAD_INPUT', `${this.path}: tensor '${name}' is truncated`);
    return out;
  }

  /** A float tensor as float32, whatever its stored float type (F64, F32, F16, BF16). */
  async float32(name: string): Promise<Float32Array> {
    const { dtype } = this.entry(name);
    return toFloat32(await this.bytes(name), dtype, `${this.path}: tensor '${name}'`);
  }

  /** An integer tensor (I64, I32) as plain numbers. */
  async ints(name: string): Promise<number[]> {
    const { dtype } = this.entry(name);
    const raw = await this.bytes(name);
    const copy = raw.slice().buffer;
    if (dtype === 'I64') return Array.from(new BigInt64Array(copy), Number);
    if (dtype === 'I32') return Array.from(new Int32Array(copy));
    throw new StudioError('BAD_INPUT', `${this.path}: tensor '${name}' is ${dtype}, not an integer tensor`);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Float bytes of any stored float type as float32. */
export function toFloat32(raw: Uint8Array, dtype: SafetensorsDType, what: string): Float32Array {
  const buf = raw.byteOffset % 8 === 0 ? raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) : raw.slice().buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return Float32Array.from(new Float64Array(buf));
    case 'F16':
      return fromFloat16(new Uint16Array(buf));
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift it back into place.
      const halves = new Uint16Array(buf);
      const bits = new Uint32Array(halves.length);
      for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new StudioError('BAD_INPUT', `${what} is ${dtype}, not a float tensor`);
  }
}
