/**
 * Tensors the converter knows the values of (constants, and whatever folds from them), in
 * TensorFlow's dtypes and row-major layout. Float values are float32, as TensorFlow computes them.
 */
export type HostDType = 'float32' | 'int32' | 'bool';

export type HostTensor =
  | { readonly dtype: 'float32'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'int32'; readonly shape: readonly number[]; readonly data: Int32Array }
  | { readonly dtype: 'bool'; readonly shape: readonly number[]; readonly data: Uint8Array };

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function makeTensor(dtype: HostDType, shape: readonly number[], values?: ArrayLike<number>): HostTensor {
  const n = sizeOf(shape);
  if (values && values.length !== n) throw new Error(`${values.length} values for shape [${shape.join(', ')}]`);
  if (dtype === 'float32') return { dtype, shape: [...shape], data: values ? Float32Array.from(values) : new Float32Array(n) };
  if (dtype === 'int32') return { dtype, shape: [...shape], data: values ? Int32Array.from(values) : new Int32Array(n) };
  return { dtype, shape: [...shape], data: values ? Uint8Array.from(values, (v) => (v ? 1 : 0)) : new Uint8Array(n) };
}

/** NumPy broadcasting of two shapes, or an error naming both. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * For each element of `out` (row-major), the offset of the element of a tensor of `shape` that
 * broadcasting maps to it.
 */
export function broadcastOffsets(shape: readonly number[], out: readonly number[]): Int32Array {
  const n = sizeOf(out);
  const offsets = new Int32Array(n);
  const rank = out.length;
  const src = stridesOf(shape);
  // Strides of the source expressed over the output's axes (0 where the source broadcasts).
  const st = out.map((d, i) => {
    const j = i - (rank - shape.length);
    return j < 0 || shape[j] === 1 ? 0 : src[j]!;
  });
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    offsets[k] = off;
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]!++;
      off += st[ax]!;
      if (idx[ax]! < out[ax]!) break;
      off -= st[ax]! * out[ax]!;
      idx[ax] = 0;
    }
  }
  return offsets;
}

/** Axis index from TensorFlow's possibly negative form. */
export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Moves axes: out[i] = in[perm[i]]. */
export function transposeHost(t: HostTensor, perm: readonly number[]): HostTensor {
  const shape = perm.map((p) => t.shape[p]!);
  const out = makeTensor(t.dtype, shape);
  const inStrides = stridesOf(t.shape);
  const st = perm.map((p) => inStrides[p]!);
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    out.data[k] = t.data[off]!;
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      idx[ax]!++;
      off += st[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      off -= st[ax]! * shape[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}
