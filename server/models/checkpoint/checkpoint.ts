/**
 * One read interface over the checkpoint formats users have: safetensors and PyTorch zip .ckpt.
 * The format is told from the content, not the extension, because downloads get renamed.
 * The merged SUPIR-over-SDXL view is merge.ts's (it builds on this module, not the other way round).
 */
import fs from 'node:fs';
import { StudioError } from '../../../nodes/api/errors.ts';
import { CkptFile } from './ckpt.ts';
import { SafetensorsFile, type SafetensorsDType } from './safetensors.ts';

export type DType = SafetensorsDType;

export interface Checkpoint {
  /** The file, or for a merged view both files. */
  readonly path: string;
  readonly format: 'safetensors' | 'ckpt' | 'merged';
  keys(): string[];
  has(key: string): boolean;
  shape(key: string): number[];
  dtype(key: string): DType;
  /** The file that holds `key` (differs per key in a merged view). */
  source(key: string): string;
  /** Row-major little-endian bytes of the tensor in its stored dtype. */
  bytes(key: string): Promise<Uint8Array>;
  /** A float tensor (F32/F16/BF16/F64) as float32. */
  float32(key: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export type CheckpointFormat = 'safetensors' | 'ckpt' | 'legacy-pickle' | 'unknown';

/** Tells the format from the first bytes: zip local header, safetensors JSON header, or a bare pickle. */
export async function sniffCheckpoint(file: string): Promise<CheckpointFormat> {
  let head: Buffer;
  try {
    const handle = await fs.promises.open(file, 'r');
    try {
      head = Buffer.alloc(9);
      const { bytesRead } = await handle.read(head, 0, 9, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new StudioError('NOT_FOUND', `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'ckpt';
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'legacy-pickle';
  if (head.length === 9 && head[8] === 0x7b /* '{' */ && head.readBigUInt64LE(0) < 1n << 32n) return 'safetensors';
  return 'unknown';
}

export async function openCheckpoint(file: string): Promise<Checkpoint> {
  const format = await sniffCheckpoint(file);
  switch (format) {
    case 'safetensors':
      return fromSafetensors(await SafetensorsFile.open(file));
    case 'ckpt':
      return fromCkpt(await CkptFile.open(file));
    case 'legacy-pickle':
      throw new StudioError(
        'BAD_INPUT',
        `${file} is a PyTorch checkpoint in the legacy (pre-1.6, non-zip) format, which is not supported: ` +
          're-save it with torch.save in PyTorch 1.6 or later, or convert it to safetensors',
      );
    default:
      throw new StudioError('BAD_INPUT', `${file} is neither a safetensors file nor a PyTorch .ckpt (zip) checkpoint`);
  }
}

function fromSafetensors(st: SafetensorsFile): Checkpoint {
  return {
    path: st.path,
    format: 'safetensors',
    keys: () => st.keys(),
    has: (key) => st.has(key),
    shape: (key) => [...st.entry(key).shape],
    dtype: (key) => st.entry(key).dtype,
    source: (key) => (st.entry(key), st.path),
    bytes: (key) => st.bytes(key),
    float32: (key) => st.float32(key),
    close: () => st.close(),
  };
}

function fromCkpt(ck: CkptFile): Checkpoint {
  return {
    path: ck.path,
    format: 'ckpt',
    keys: () => ck.keys(),
    has: (key) => ck.has(key),
    shape: (key) => ck.tensor(key).shape,
    dtype: (key) => ck.tensor(key).dtype,
    source: (key) => (ck.tensor(key), ck.path),
    // async, so that an unknown key rejects like every other read failure instead of throwing.
    bytes: async (key) => ck.tensor(key).bytes(),
    float32: async (key) => ck.tensor(key).read(),
    close: () => ck.close(),
  };
}
