/**
 * PyTorch .ckpt / .pt / .pth checkpoints (the zip format torch.save has written since 1.6): a pickle
 * `<archive>/data.pkl` that describes the state dict, and one raw little-endian zip entry per storage,
 * `<archive>/data/<key>`. The pickle goes through the restricted unpickler (torch-pickle.ts); tensors
 * stay lazy views into the zip and are read by offset when asked for. Every storage a tensor needs is
 * checked to exist and be large enough when the file is opened, so a damaged file fails early.
 */
import fs from 'node:fs';
import { StudioError } from '../../../nodes/api/errors.ts';
import { SAFETENSORS_DTYPES, toFloat32, type SafetensorsDType } from './safetensors.ts';
import { TensorRef, unpickleTorch } from './torch-pickle.ts';
import { typeName } from './pickle.ts';
import { ZipFile } from './zip.ts';

export interface CkptTensor {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: number[];
  /** In elements, as torch reports them. */
  readonly strides: number[];
  readonly storageOffset: number;
  readonly storageKey: string;
  /** The tensor's elements, row-major and contiguous, little-endian. */
  bytes(): Promise<Uint8Array>;
  read(): Promise<Float32Array>;
}

/** data.pkl of an SDXL-size state dict is well under 1 MB; refuse absurd ones before reading them. */
const MAX_PICKLE = 512 * 1024 * 1024;
/** Wrappers torch checkpoints put around the state dict; SUPIR's own loader unwraps 'state_dict'. */
const WRAPPERS = ['state_dict', 'model', 'module'];

export class CkptFile {
  private constructor(
    readonly path: string,
    private readonly handle: fs.promises.FileHandle,
    private readonly zip: ZipFile,
    private readonly prefix: string,
    private readonly tensors: Map<string, TensorRef>,
  ) {}

  static async open(file: string): Promise<CkptFile> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      throw new StudioError('NOT_FOUND', `cannot open ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const zip = await ZipFile.open(file, handle);
      // The top folder's name varies: the file's stem in torch 1.x (e.g. 'SUPIR-v0Q/'), 'archive/' elsewhere.
      const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pickles.length !== 1) {
        throw new StudioError('BAD_INPUT', `${file} is a zip but not a PyTorch checkpoint (${pickles.length === 0 ? 'no <archive>/data.pkl' : 'several data.pkl'})`);
      }
      const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
      const order = zip.entries.get(`${prefix}byteorder`);
      if (order && Buffer.from(await zip.read(order.name)).toString('latin1').trim() !== 'little') {
        throw new StudioError('BAD_INPUT', `${file} was saved on a big-endian machine, which is not supported; re-save it on a little-endian one`);
      }
      const pkl = zip.entries.get(`${prefix}data.pkl`)!;
      if (pkl.size > MAX_PICKLE) throw new StudioError('BAD_INPUT', `${file}: data.pkl is ${pkl.size} bytes, too large for a checkpoint`);
      const tensors = stateDict(unpickleTorch(await zip.read(pkl.name), file), file);
      for (const [name, t] of tensors) checkStorage(name, t, zip, prefix, file);
      return new CkptFile(file, handle, zip, prefix, tensors);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensor(name: string): CkptTensor {
    const t = this.tensors.get(name);
    if (!t) throw new StudioError('NOT_FOUND', `${this.path} has no tensor '${name}'`);
    const { storage, shape, strides, storageOffset } = t;
    const what = `${this.path}: tensor '${name}'`;
    const bytes = (): Promise<Uint8Array> => this.bytes(t);
    return {
      name,
      dtype: storage.dtype,
      shape: [...shape],
      strides: [...strides],
      storageOffset,
      storageKey: storage.key,
      bytes,
      read: async () => asFloat32(await bytes(), storage.dtype, what),
    };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Reads only the span of the storage the view touches, then gathers it if it is not contiguous. */
  private async bytes(t: TensorRef): Promise<Uint8Array> {
    const size = SAFETENSORS_DTYPES[t.storage.dtype];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel === 0) return new Uint8Array(0);
    const span = viewSpan(t);
    const raw = await this.zip.read(`${this.prefix}data/${t.storage.key}`, t.storageOffset * size, span * size);
    return isContiguous(t.shape, t.strides) ? raw : gather(raw, t.shape, t.strides, size);
  }
}

/**
 * Float32 data is viewed in place rather than copied (toFloat32 copies), which halves the peak memory
 * of reading a gigabyte tensor. Safe because every buffer read here is freshly allocated for the tensor.
 */
export function asFloat32(bytes: Uint8Array, dtype: SafetensorsDType, what: string): Float32Array {
  if (dtype === 'F32' && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return toFloat32(bytes, dtype, what);
}

/** Finds the state dict: the top dict, or the one under an obvious wrapper key when the top holds no tensors. */
function stateDict(root: unknown, file: string): Map<string, TensorRef> {
  let d = root;
  for (let depth = 0; d instanceof Map && depth < 3; depth++) {
    if ([...d.values()].some((v) => v instanceof TensorRef)) break;
    const inner = WRAPPERS.map((k) => (d as Map<unknown, unknown>).get(k)).find((v) => v instanceof Map);
    if (!inner) break;
    d = inner;
  }
  if (!(d instanceof Map)) throw new StudioError('BAD_INPUT', `${file} holds a ${typeName(d)}, not a state dict of tensors`);
  const out = new Map<string, TensorRef>();
  for (const [k, v] of d) if (typeof k === 'string' && v instanceof TensorRef) out.set(k, v);
  if (out.size === 0) {
    const keys = [...d.keys()].slice(0, 8).map(String).join(', ');
    throw new StudioError('BAD_INPUT', `${file} holds no tensors where a state dict should be (keys: ${keys || 'none'})`);
  }
  return out;
}

function checkStorage(name: string, t: TensorRef, zip: ZipFile, prefix: string, file: string): void {
  const { storage } = t;
  const entry = zip.entries.get(`${prefix}data/${storage.key}`);
  const bytes = storage.numel * SAFETENSORS_DTYPES[storage.dtype];
  if (!entry) throw new StudioError('BAD_INPUT', `${file}: tensor '${name}' needs storage data/${storage.key}, which the zip does not hold (incomplete file?)`);
  if (entry.size < bytes) throw new StudioError('BAD_INPUT', `${file}: storage data/${storage.key} holds ${entry.size} bytes, its ${storage.numel} ${storage.dtype} elements need ${bytes}`);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel > 0 && t.storageOffset + viewSpan(t) > storage.numel) {
    throw new StudioError('BAD_INPUT', `${file}: tensor '${name}' [${t.shape.join(', ')}] at offset ${t.storageOffset} reaches past its storage of ${storage.numel} elements`);
  }
}

/** Elements from the view's first to its last, inclusive. */
function viewSpan(t: TensorRef): number {
  return t.shape.reduce((acc, d, i) => acc + (d - 1) * t.strides[i]!, 0) + 1;
}

function isContiguous(shape: number[], strides: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    // A dimension of size 1 never moves, so its stride is arbitrary (torch leaves odd values there).
    if (shape[i]! !== 1 && strides[i]! !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Copies a strided view into row-major order, one innermost row at a time. */
function gather(raw: Uint8Array, shape: number[], strides: number[], size: number): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * size);
  const rank = shape.length;
  const inner = shape[rank - 1]!;
  const innerStride = strides[rank - 1]! * size;
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; ) {
    let src = 0;
    for (let i = 0; i < rank - 1; i++) src += index[i]! * strides[i]! * size;
    for (let j = 0; j < inner; j++, src += innerStride, o += size) out.set(raw.subarray(src, src + size), o);
    for (let i = rank - 2; i >= 0 && ++index[i]! === shape[i]!; i--) index[i] = 0;
  }
  return out;
}

