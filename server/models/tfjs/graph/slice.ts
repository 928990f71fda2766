/**
 * TensorFlow's StridedSlice on a known shape, resolved to one (begin, end, step) per input axis
 * plus the final shape after new and shrunk axes: both the folder (fold.ts) and the ONNX emitter
 * (emit.ts, a Slice then a Reshape) work from this one reading of the masks.
 */
export interface SliceMasks {
  begin: number;
  end: number;
  ellipsis: number;
  newAxis: number;
  shrinkAxis: number;
}

export interface ResolvedSlice {
  /** Per input axis; `end` may be -1 for a negative step that runs to the first element. */
  readonly begin: number[];
  readonly end: number[];
  readonly step: number[];
  /** Per input axis: elements taken. */
  readonly counts: number[];
  /** The output's shape (new axes added, shrunk axes removed). */
  readonly outShape: number[];
}

export function resolveStridedSlice(
  shape: readonly number[],
  begin: readonly number[],
  end: readonly number[],
  strides: readonly number[],
  masks: SliceMasks,
): ResolvedSlice {
  const rank = shape.length;
  const res: ResolvedSlice = { begin: [], end: [], step: [], counts: [], outShape: [] };
  const bit = (mask: number, i: number): boolean => ((mask >> i) & 1) === 1;
  const full = (dim: number): void => {
    res.begin.push(0);
    res.end.push(dim);
    res.step.push(1);
    res.counts.push(dim);
    res.outShape.push(dim);
  };
  let axis = 0;
  const n = begin.length;
  for (let i = 0; i < n; i++) {
    if (bit(masks.ellipsis, i)) {
      // The ellipsis covers every axis the entries after it do not consume.
      let later = 0;
      for (let j = i + 1; j < n; j++) if (!bit(masks.newAxis, j)) later++;
      const cover = rank - axis - later;
      for (let k = 0; k < cover; k++) full(shape[axis++]!);
      continue;
    }
    if (bit(masks.newAxis, i)) {
      res.outShape.push(1);
      continue;
    }
    if (axis >= rank) throw new Error(`StridedSlice: ${n} slice entries for rank ${rank}`);
    const dim = shape[axis++]!;
    const s = strides[i] ?? 1;
    if (s === 0) throw new Error('StridedSlice: stride 0');
    if (bit(masks.shrinkAxis, i)) {
      const b = begin[i]! < 0 ? begin[i]! + dim : begin[i]!;
      if (b < 0 || b >= dim) throw new Error(`StridedSlice: index ${begin[i]} is out of range for an axis of ${dim}`);
      res.begin.push(b);
      res.end.push(b + 1);
      res.step.push(1);
      res.counts.push(1);
      continue;
    }
    const clamp = (v: number): number => (s > 0 ? Math.min(Math.max(v, 0), dim) : Math.min(Math.max(v, -1), dim - 1));
    const norm = (v: number): number => clamp(v < 0 ? v + dim : v);
    const b = bit(masks.begin, i) ? (s > 0 ? 0 : dim - 1) : norm(begin[i]!);
    const e = bit(masks.end, i) ? (s > 0 ? dim : -1) : norm(end[i]!);
    const count = s > 0 ? Math.max(0, Math.ceil((e - b) / s)) : Math.max(0, Math.ceil((b - e) / -s));
    res.begin.push(b);
    res.end.push(e);
    res.step.push(s);
    res.counts.push(count);
    res.outShape.push(count);
  }
  while (axis < rank) full(shape[axis++]!);
  return res;
}
