/**
 * TensorFlow ops whose inputs depend on the image, written as ONNX ops with their static output
 * shapes (the folder needs those shapes: a later Shape op folds from them). Shape-like operands
 * (Reshape's shape, Transpose's perm, axes, slice bounds) must be known here: they are, once
 * fold.ts has run on a graph whose input size is fixed.
 *
 * Layout: TensorFlow's NHWC is kept (MAXIM's dense layers, norms and gating all work on the
 * channel axis, last and contiguous there). A 1x1 conv is a MatMul over that axis; a larger one is
 * wrapped in NHWC⇄NCHW transposes.
 * Einsum becomes MatMul (MAXIM's gated-MLP dense layers and its resize matrices are all a
 * tensor times a matrix).
 */
import type { GraphBuilder, Value } from '../../onnx/builder.ts';
import { expandDimsShape, ints, reshapeTarget, squeezeShape } from './fold.ts';
import { attrs, type TfNode } from './model.ts';
import { resolveStridedSlice } from './slice.ts';
import { broadcastShapes, normAxis, sizeOf, transposeHost, type HostDType, type HostTensor } from './tensor.ts';

export interface Dyn {
  readonly kind: 'dyn';
  readonly value: Value;
  readonly shape: readonly number[];
  readonly dtype: HostDType;
}
export interface Host {
  readonly kind: 'host';
  readonly t: HostTensor;
}
export type Val = Dyn | Host;

export interface EmitContext {
  readonly g: GraphBuilder;
  /** Multiply-adds per run of the emitted convs and matmuls (for the efficiency report). */
  macs: number;
}

const BINARY: Record<string, 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max' | 'Min'> = {
  AddV2: 'Add', Add: 'Add', Sub: 'Sub', Mul: 'Mul', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min',
};
const COMPARE: Record<string, { op: 'Greater' | 'Less' | 'Equal'; not: boolean; swap: boolean }> = {
  Greater: { op: 'Greater', not: false, swap: false },
  Less: { op: 'Less', not: false, swap: false },
  Equal: { op: 'Equal', not: false, swap: false },
  NotEqual: { op: 'Equal', not: true, swap: false },
  GreaterEqual: { op: 'Less', not: true, swap: false },
  LessEqual: { op: 'Greater', not: true, swap: false },
};

export function shapeOf(v: Val): readonly number[] {
  return v.kind === 'dyn' ? v.shape : v.t.shape;
}
function dtypeOfVal(v: Val): HostDType {
  return v.kind === 'dyn' ? v.dtype : v.t.dtype;
}

/** A known tensor as an ONNX constant (deduplicated by content in the builder). */
export function onnxOf(ctx: EmitContext, v: Val): Value {
  if (v.kind === 'dyn') return v.value;
  const t = v.t;
  const dims = [...t.shape];
  if (t.dtype === 'float32') return ctx.g.constant(t.data, dims, 'float32');
  if (t.dtype === 'int32') return ctx.g.constant(t.data, dims, 'int32');
  return ctx.g.constant(t.data, dims, 'bool');
}

function known(node: TfNode, v: Val | undefined, what: string): HostTensor {
  if (!v || v.kind !== 'host') throw new Error(`${node.op} '${node.name}': its ${what} depends on the image; only fixed values are supported`);
  return v.t;
}

const dyn = (value: Value, shape: readonly number[], dtype: HostDType): Dyn => ({ kind: 'dyn', value, shape: [...shape], dtype });

export function emit(ctx: EmitContext, node: TfNode, ins: readonly Val[]): Dyn {
  const { g } = ctx;
  const [a, b, c] = ins;
  const op = node.op;
  if (op in BINARY) {
    return dyn(g.op(BINARY[op]!, [onnxOf(ctx, a!), onnxOf(ctx, b!)]), broadcastShapes(shapeOf(a!), shapeOf(b!)), dtypeOfVal(a!));
  }
  if (op in COMPARE) {
    const spec = COMPARE[op]!;
    let out = g.op(spec.op, [onnxOf(ctx, a!), onnxOf(ctx, b!)]);
    if (spec.not) out = g.op('Not', [out]);
    return dyn(out, broadcastShapes(shapeOf(a!), shapeOf(b!)), 'bool');
  }
  const x = a as Dyn;
  switch (op) {
    case 'Identity':
      return x;
    case 'Square':
      return dyn(g.op('Mul', [x.value, x.value]), x.shape, x.dtype);
    case 'Rsqrt':
      return dyn(g.op('Div', [g.scalar(1), g.op('Sqrt', [x.value])]), x.shape, x.dtype);
    case 'Reciprocal':
      return dyn(g.op('Div', [g.scalar(1), x.value]), x.shape, x.dtype);
    case 'Sqrt':
    case 'Tanh':
    case 'Exp':
    case 'Neg':
    case 'Abs':
      return dyn(g.op(op, [x.value]), x.shape, x.dtype);
    case 'Cast': {
      const to = attrs.dtype(node, 'DstT');
      return dyn(g.op('Cast', [x.value], { to: ({ float32: 1, int32: 6, bool: 9 } as const)[to] }), x.shape, to);
    }
    case 'SelectV2':
    case 'Select': {
      const shape = broadcastShapes(broadcastShapes(shapeOf(a!), shapeOf(b!)), shapeOf(c!));
      return dyn(g.op('Where', [onnxOf(ctx, a!), onnxOf(ctx, b!), onnxOf(ctx, c!)]), shape, dtypeOfVal(b!));
    }
    case 'Reshape': {
      const shape = reshapeTarget(x.shape, ints(known(node, b, 'shape')));
      if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
      return dyn(g.op('Reshape', [x.value, g.int64s(shape)]), shape, x.dtype);
    }
    case 'Transpose': {
      const perm = ints(known(node, b, 'perm'));
      if (perm.every((p, i) => p === i)) return x;
      return dyn(g.op('Transpose', [x.value], { perm }), perm.map((p) => x.shape[p]!), x.dtype);
    }
    case 'ExpandDims': {
      const shape = expandDimsShape(x.shape, ints(known(node, b, 'axis'))[0]!);
      return dyn(g.op('Reshape', [x.value, g.int64s(shape)]), shape, x.dtype);
    }
    case 'Squeeze': {
      const shape = squeezeShape(x.shape, attrs.ints(node, 'squeeze_dims'));
      return dyn(g.op('Reshape', [x.value, g.int64s(shape)]), shape, x.dtype);
    }
    case 'ConcatV2': {
      const parts = ins.slice(0, -1);
      const rank = shapeOf(parts[0]!).length;
      const axis = normAxis(ints(known(node, ins[ins.length - 1], 'axis'))[0]!, rank, 'ConcatV2');
      const shape = [...shapeOf(parts[0]!)];
      shape[axis] = parts.reduce((s, p) => s + shapeOf(p)[axis]!, 0);
      return dyn(g.op('Concat', parts.map((p) => onnxOf(ctx, p)), { axis }), shape, dtypeOfVal(parts[0]!));
    }
    case 'Pack': {
      const rank = shapeOf(a!).length + 1;
      const axis = normAxis(attrs.int(node, 'axis', 0), rank, 'Pack');
      const each = expandDimsShape(shapeOf(a!), axis);
      const parts = ins.map((p) => g.op('Reshape', [onnxOf(ctx, p), g.int64s(each)]));
      const shape = [...each];
      shape[axis] = ins.length;
      return dyn(g.op('Concat', parts, { axis }), shape, dtypeOfVal(a!));
    }
    case 'StridedSlice':
      return stridedSlice(ctx, node, x, ints(known(node, b, 'begin')), ints(known(node, c, 'end')), ints(known(node, ins[3], 'strides')));
    case 'BroadcastTo': {
      const shape = broadcastShapes(shapeOf(a!), ints(known(node, b, 'shape')));
      return dyn(g.op('Expand', [onnxOf(ctx, a!), g.int64s(shape)]), shape, dtypeOfVal(a!));
    }
    case 'Sum': {
      const rank = x.shape.length;
      const axes = ints(known(node, b, 'axes')).map((ax) => normAxis(ax, rank, 'Sum'));
      const keep = attrs.bool(node, 'keep_dims');
      const shape = x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
      return dyn(g.op('ReduceSum', [x.value, g.int64s(axes)], { keepdims: keep ? 1 : 0 }), shape, x.dtype);
    }
    case 'GatherV2': {
      if (attrs.int(node, 'batch_dims', 0) !== 0) throw new Error(`GatherV2 '${node.name}' with batch_dims is not supported`);
      const idx = known(node, b, 'indices');
      const axis = normAxis(ints(known(node, c, 'axis'))[0]!, x.shape.length, 'GatherV2');
      const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
      return dyn(g.op('Gather', [x.value, g.constant(BigInt64Array.from(ints(idx), BigInt), [...idx.shape], 'int64')], { axis }), shape, x.dtype);
    }
    case 'Einsum':
      return einsum(ctx, node, a!, b!);
    case '_FastGelu':
      return dyn(g.op('FastGelu', [x.value]), x.shape, x.dtype);
    case '_LayerNorm':
      return layerNorm(ctx, node, x, known(node, b, 'gamma'), known(node, c, 'beta'), known(node, ins[3], 'epsilon').data[0]!);
    case 'Conv2D':
      return conv2d(ctx, node, x, known(node, b, 'filter'));
    case 'Conv2DBackpropInput':
      return conv2dTranspose(ctx, node, ints(known(node, a, 'output size')), known(node, b, 'filter'), c as Dyn);
    default:
      throw new Error(`${op} '${node.name}' on values that depend on the image is not supported`);
  }
}

function stridedSlice(ctx: EmitContext, node: TfNode, x: Dyn, begin: number[], end: number[], strides: number[]): Dyn {
  const { g } = ctx;
  const s = resolveStridedSlice(x.shape, begin, end, strides, {
    begin: attrs.int(node, 'begin_mask', 0),
    end: attrs.int(node, 'end_mask', 0),
    ellipsis: attrs.int(node, 'ellipsis_mask', 0),
    newAxis: attrs.int(node, 'new_axis_mask', 0),
    shrinkAxis: attrs.int(node, 'shrink_axis_mask', 0),
  });
  const axes: number[] = [];
  s.counts.forEach((n, ax) => {
    if (n !== x.shape[ax] || s.step[ax] !== 1) axes.push(ax);
  });
  let out = x.value;
  if (axes.length > 0) {
    // ONNX reads a negative end as counting from the back: "before the first" must be below −dim.
    const ends = axes.map((ax) => (s.end[ax]! < 0 ? -x.shape[ax]! - 1 : s.end[ax]!));
    out = g.op('Slice', [out, g.int64s(axes.map((ax) => s.begin[ax]!)), g.int64s(ends), g.int64s(axes), g.int64s(axes.map((ax) => s.step[ax]!))]);
  }
  const sliced = s.counts;
  if (sliced.length !== s.outShape.length || sliced.some((d, i) => d !== s.outShape[i])) out = g.op('Reshape', [out, g.int64s(s.outShape)]);
  return dyn(out, s.outShape, x.dtype);
}

/**
 * Two-operand einsum with one contracted letter, where one operand is a matrix: a MatMul, with
 * the matrix transposed at conversion when it is known, and at most one transpose of the result.
 */
function einsum(ctx: EmitContext, node: TfNode, a: Val, b: Val): Dyn {
  const { g } = ctx;
  const eq = attrs.str(node, 'equation').replace(/\s/g, '');
  const m = /^(\w+),(\w+)->(\w+)$/.exec(eq);
  if (!m) throw new Error(`Einsum '${node.name}': equation '${eq}' is not supported`);
  let [, la, lb] = m as unknown as [string, string, string, string];
  const lo = m[3]!;
  let [x, w] = [a, b];
  // The operand with two letters, one contracted and one kept, is the matrix.
  const isMatrix = (ls: string, other: string) => ls.length === 2 && [...ls].filter((l) => other.includes(l) && !lo.includes(l)).length === 1;
  if (!isMatrix(lb, la) && isMatrix(la, lb)) [x, w, la, lb] = [b, a, lb, la];
  if (!isMatrix(lb, la) || x.kind !== 'dyn') throw new Error(`Einsum '${node.name}': '${eq}' is not an image tensor times a matrix`);
  const k = [...lb].find((l) => la.includes(l) && !lo.includes(l))!;
  const r = [...lb].find((l) => l !== k)!;
  if ([...la].some((l) => l !== k && !lo.includes(l)) || la.includes(r) || lo.length !== la.length) {
    throw new Error(`Einsum '${node.name}': '${eq}' is not supported`);
  }
  const xs = x.shape;
  const p = la.indexOf(k);
  const kDim = xs[p]!;
  const rDim = shapeOf(w)[lb.indexOf(r)]!;
  ctx.macs += sizeOf(xs) * rDim;
  let out: Value;
  let letters: string;
  let shape: number[];
  if (p === la.length - 1) {
    // [..., k] @ [k, r]: the matrix as written or transposed once.
    const mat = lb === `${k}${r}` ? w : transposeVal(ctx, w);
    out = g.op('MatMul', [x.value, onnxOf(ctx, mat)]);
    letters = la.slice(0, -1) + r;
    shape = [...xs.slice(0, -1), rDim];
  } else {
    // [before, k, after] → Mᵀ[r, k] @ X[before, k, after] = [before, r, after]: no copy of X.
    const mat = lb === `${r}${k}` ? w : transposeVal(ctx, w);
    const before = sizeOf(xs.slice(0, p));
    const after = sizeOf(xs.slice(p + 1));
    const x3 = g.op('Reshape', [x.value, g.int64s([before, kDim, after])]);
    const prod = g.op('MatMul', [onnxOf(ctx, mat), x3]);
    shape = [...xs.slice(0, p), rDim, ...xs.slice(p + 1)];
    out = g.op('Reshape', [prod, g.int64s(shape)]);
    letters = la.slice(0, p) + r + la.slice(p + 1);
  }
  if (letters !== lo) {
    const perm = [...lo].map((l) => letters.indexOf(l));
    out = g.op('Transpose', [out], { perm });
    shape = perm.map((i) => shape[i]!);
  }
  return dyn(out, shape, x.dtype);
}

function transposeVal(ctx: EmitContext, w: Val): Val {
  if (w.kind === 'host') return { kind: 'host', t: transposeHost(w.t, [1, 0]) };
  return dyn(ctx.g.op('Transpose', [w.value], { perm: [1, 0] }), [w.shape[1]!, w.shape[0]!], w.dtype);
}

/**
 * A layer norm fused by fuse.ts: ONNX LayerNormalization when it normalises the last axis by a
 * true mean and gamma/beta are per channel; otherwise the spelled-out formula, as TensorFlow had it.
 */
function layerNorm(ctx: EmitContext, node: TfNode, x: Dyn, gamma: HostTensor, beta: HostTensor, eps: number): Dyn {
  const { g } = ctx;
  const rank = x.shape.length;
  const axis = normAxis(attrs.int(node, 'axis'), rank, 'LayerNorm');
  const c = x.shape[axis]!;
  const kMean = node.attr.k_mean!.f!;
  const kSquare = node.attr.k_square!.f!;
  const isMean = (k: number): boolean => Math.abs(k * c - 1) < 1e-6;
  if (axis === rank - 1 && isMean(kMean) && isMean(kSquare) && sizeOf(gamma.shape) === c && sizeOf(beta.shape) === c && gamma.dtype === 'float32') {
    const vec = (t: HostTensor): Val => ({ kind: 'host', t: { ...t, shape: [c] } as HostTensor });
    return dyn(g.op('LayerNormalization', [x.value, onnxOf(ctx, vec(gamma)), onnxOf(ctx, vec(beta))], { axis: -1, epsilon: { float: eps } }), x.shape, x.dtype);
  }
  const keep = x.shape.map((d, i) => (i === axis ? 1 : d));
  const sumTimes = (v: Value, k: number): Value => g.op('Mul', [g.op('ReduceSum', [v, g.int64s([axis])], { keepdims: 1 }), g.scalar(k)]);
  const mean = sumTimes(x.value, kMean);
  const variance = g.op('Max', [g.scalar(0), g.op('Sub', [sumTimes(g.op('Mul', [x.value, x.value]), kSquare), g.op('Mul', [mean, mean])])]);
  const scale = g.op('Mul', [g.op('Div', [g.scalar(1), g.op('Sqrt', [g.op('Add', [variance, g.scalar(eps)])])]), onnxOf(ctx, { kind: 'host', t: gamma })]);
  const y = g.op('Add', [g.op('Mul', [g.op('Sub', [x.value, mean]), scale]), onnxOf(ctx, { kind: 'host', t: beta })]);
  return dyn(y, broadcastShapes(broadcastShapes(x.shape, keep), broadcastShapes(gamma.shape, beta.shape)), x.dtype);
}

/** TensorFlow's SAME padding for one axis: the extra pixel goes after. */
function samePads(inSize: number, k: number, stride: number, dilation: number): [number, number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2), out];
}

function conv2d(ctx: EmitContext, node: TfNode, x: Dyn, filter: HostTensor): Dyn {
  const { g } = ctx;
  if (attrs.str(node, 'data_format', 'NHWC') !== 'NHWC') throw new Error(`Conv2D '${node.name}': only NHWC is supported`);
  const [, sh, sw] = attrs.ints(node, 'strides');
  const dil = attrs.ints(node, 'dilations');
  const [dh, dw] = [dil[1] ?? 1, dil[2] ?? 1];
  const [kh, kw, cin, cout] = filter.shape as [number, number, number, number];
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (c % cin !== 0) throw new Error(`Conv2D '${node.name}': ${c} input channels for a filter of ${cin}`);
  const group = c / cin;
  const padding = attrs.str(node, 'padding');
  let pads: number[];
  let oh: number;
  let ow: number;
  if (padding === 'SAME') {
    const [t, bt, o1] = samePads(h, kh, sh!, dh);
    const [l, rt, o2] = samePads(w, kw, sw!, dw);
    pads = [t, l, bt, rt];
    [oh, ow] = [o1, o2];
  } else if (padding === 'VALID') {
    pads = [0, 0, 0, 0];
    oh = Math.floor((h - ((kh - 1) * dh + 1)) / sh!) + 1;
    ow = Math.floor((w - ((kw - 1) * dw + 1)) / sw!) + 1;
  } else if (padding === 'EXPLICIT') {
    const e = attrs.ints(node, 'explicit_paddings');
    pads = [e[2]!, e[4]!, e[3]!, e[5]!];
    oh = Math.floor((h + e[2]! + e[3]! - ((kh - 1) * dh + 1)) / sh!) + 1;
    ow = Math.floor((w + e[4]! + e[5]! - ((kw - 1) * dw + 1)) / sw!) + 1;
  } else {
    throw new Error(`Conv2D '${node.name}': padding ${padding} is not supported`);
  }
  ctx.macs += n * oh * ow * cout * kh * kw * cin;
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && group === 1 && pads.every((p) => p === 0)) {
    // A 1x1 conv in NHWC is a matmul over the channel axis: no layout change (MAXIM's are 70 % of its convs).
    const matrix: HostTensor = { dtype: 'float32', shape: [cin, cout], data: filter.data as Float32Array };
    return dyn(g.op('MatMul', [x.value, onnxOf(ctx, { kind: 'host', t: matrix })]), [n, oh, ow, cout], x.dtype);
  }
  const weight = transposeHost(filter, [3, 2, 0, 1]); // HWIO → OIHW
  const nchw = g.op('Transpose', [x.value], { perm: [0, 3, 1, 2] });
  const y = g.op('Conv', [nchw, onnxOf(ctx, { kind: 'host', t: weight })], {
    kernel_shape: [kh, kw], strides: [sh!, sw!], dilations: [dh, dw], pads, group,
  });
  return dyn(g.op('Transpose', [y], { perm: [0, 2, 3, 1] }), [n, oh, ow, cout], x.dtype);
}

/** Conv2DBackpropInput (a transposed conv): filter [kh, kw, out channels, in channels]. */
function conv2dTranspose(ctx: EmitContext, node: TfNode, outSize: number[], filter: HostTensor, x: Dyn): Dyn {
  const { g } = ctx;
  if (x?.kind !== 'dyn') throw new Error(`Conv2DBackpropInput '${node.name}': its input does not depend on the image`);
  if (attrs.str(node, 'data_format', 'NHWC') !== 'NHWC') throw new Error(`Conv2DBackpropInput '${node.name}': only NHWC is supported`);
  const [, sh, sw] = attrs.ints(node, 'strides');
  const dil = attrs.ints(node, 'dilations');
  if ((dil[1] ?? 1) !== 1 || (dil[2] ?? 1) !== 1) throw new Error(`Conv2DBackpropInput '${node.name}': dilation is not supported`);
  const [kh, kw, cout, cin] = filter.shape as [number, number, number, number];
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (c !== cin) throw new Error(`Conv2DBackpropInput '${node.name}': ${c} channels for a filter of ${cin}`);
  const [, oh, ow] = outSize as [number, number, number, number];
  const padding = attrs.str(node, 'padding');
  // The forward conv this is the gradient of maps [oh, ow] to [h, w]; its padding is ours.
  const padsFor = (outDim: number, k: number, s: number): [number, number] => {
    const full = (padding === 'SAME' ? (Math.ceil(outDim / s) - 1) * s + k - outDim : 0);
    const total = Math.max(full, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [pt, pb] = padsFor(oh!, kh, sh!);
  const [pl, pr] = padsFor(ow!, kw, sw!);
  const natH = (h - 1) * sh! + kh - pt - pb;
  const natW = (w - 1) * sw! + kw - pl - pr;
  if (natH > oh! || natW > ow!) throw new Error(`Conv2DBackpropInput '${node.name}': output ${oh}x${ow} is smaller than ${natH}x${natW}`);
  const weight = transposeHost(filter, [3, 2, 0, 1]); // [kh, kw, out, in] → [in, out, kh, kw]
  ctx.macs += n * h * w * cin * cout * kh * kw;
  const nchw = g.op('Transpose', [x.value], { perm: [0, 3, 1, 2] });
  const y = g.op('ConvTranspose', [nchw, onnxOf(ctx, { kind: 'host', t: weight })], {
    kernel_shape: [kh, kw], strides: [sh!, sw!], pads: [pt, pl, pb, pr], output_padding: [oh! - natH, ow! - natW],
  });
  return dyn(g.op('Transpose', [y], { perm: [0, 2, 3, 1] }), [n, oh!, ow!, cout], x.dtype);
}
