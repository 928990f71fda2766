/**
 * Evaluates a TensorFlow op whose inputs are all known, at conversion time. With the tile size
 * fixed, every shape computation of a jax2tf graph (Shape → StridedSlice → Pack → Reshape, the
 * resize weight matrices built from Range/Floor/Abs/Maximum...) folds to a constant here and never
 * reaches onnxruntime. Float results are stored as float32 after each op, as TensorFlow rounds.
 */
import { attrs, type TfNode } from './model.ts';
import { resolveStridedSlice } from './slice.ts';
import { broadcastOffsets, broadcastShapes, makeTensor, normAxis, sizeOf, stridesOf, transposeHost, type HostDType, type HostTensor } from './tensor.ts';

type Binary = (a: number, b: number) => number;

const FLOAT_BINARY: Record<string, Binary> = {
  AddV2: (a, b) => a + b,
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  RealDiv: (a, b) => a / b,
  Maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  Minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  FloorDiv: (a, b) => Math.floor(a / b),
  FloorMod: (a, b) => {
    const r = a - Math.floor(a / b) * b;
    return r;
  },
  SquaredDifference: (a, b) => (a - b) * (a - b),
  Pow: (a, b) => a ** b,
};

const INT_BINARY: Record<string, Binary> = {
  AddV2: (a, b) => (a + b) | 0,
  Add: (a, b) => (a + b) | 0,
  Sub: (a, b) => (a - b) | 0,
  Mul: (a, b) => Math.imul(a, b),
  Maximum: Math.max,
  Minimum: Math.min,
  FloorDiv: (a, b) => {
    if (b === 0) throw new Error('integer division by zero');
    return Math.floor(a / b);
  },
  FloorMod: (a, b) => {
    if (b === 0) throw new Error('integer division by zero');
    return a - Math.floor(a / b) * b;
  },
};

const COMPARE: Record<string, Binary> = {
  Greater: (a, b) => +(a > b),
  GreaterEqual: (a, b) => +(a >= b),
  Less: (a, b) => +(a < b),
  LessEqual: (a, b) => +(a <= b),
  Equal: (a, b) => +(a === b),
  NotEqual: (a, b) => +(a !== b),
  LogicalAnd: (a, b) => +(a !== 0 && b !== 0),
  LogicalOr: (a, b) => +(a !== 0 || b !== 0),
};

const FLOAT_UNARY: Record<string, (x: number) => number> = {
  Square: (x) => x * x,
  Rsqrt: (x) => 1 / Math.sqrt(x),
  Sqrt: Math.sqrt,
  Tanh: Math.tanh,
  Exp: Math.exp,
  Neg: (x) => -x,
  Abs: Math.abs,
  Reciprocal: (x) => 1 / x,
  Floor: Math.floor,
  Sign: (x) => (Number.isNaN(x) ? NaN : Math.sign(x)),
};

const INT_UNARY: Record<string, (x: number) => number> = {
  Square: (x) => Math.imul(x, x),
  Neg: (x) => -x | 0,
  Abs: (x) => Math.abs(x) | 0,
  Sign: Math.sign,
};

/** The ops this module evaluates (the emitter handles the rest, and these on unknown inputs). */
export function canFold(op: string): boolean {
  return (
    op in FLOAT_BINARY || op in INT_BINARY || op in COMPARE || op in FLOAT_UNARY || op in INT_UNARY ||
    ['Identity', 'Cast', 'LogicalNot', 'SelectV2', 'Select', 'Reshape', 'Transpose', 'ExpandDims', 'Squeeze', 'ConcatV2', 'Pack',
      'StridedSlice', 'BroadcastTo', 'Range', 'Sum', 'Prod', 'Max', 'Min', 'Mean', 'GatherV2', 'Einsum', 'Fill'].includes(op)
  );
}

export function fold(node: TfNode, inputs: readonly HostTensor[]): HostTensor {
  const [a, b, c] = inputs;
  const op = node.op;
  if (op in COMPARE) return elementwise('bool', [a!, b!], COMPARE[op]!);
  if (op in FLOAT_BINARY || op in INT_BINARY) {
    if (a!.dtype !== b!.dtype) throw new Error(`${op}: operands are ${a!.dtype} and ${b!.dtype}`);
    const table = a!.dtype === 'int32' ? INT_BINARY : FLOAT_BINARY;
    const fn = table[op];
    if (!fn) throw new Error(`${op} on ${a!.dtype} is not supported`);
    return elementwise(a!.dtype, [a!, b!], fn);
  }
  if (op in FLOAT_UNARY || op in INT_UNARY) {
    const fn = (a!.dtype === 'int32' ? INT_UNARY : FLOAT_UNARY)[op];
    if (!fn) throw new Error(`${op} on ${a!.dtype} is not supported`);
    return elementwise(a!.dtype, [a!], fn);
  }
  switch (op) {
    case 'Identity':
      return a!;
    case 'LogicalNot':
      return elementwise('bool', [a!], (x) => +(x === 0));
    case 'Cast':
      return cast(a!, attrs.dtype(node, 'DstT'));
    case 'SelectV2':
    case 'Select':
      if (b!.dtype !== c!.dtype) throw new Error(`${op}: branches are ${b!.dtype} and ${c!.dtype}`);
      return elementwise(b!.dtype, [a!, b!, c!], (cond, x, y) => (cond ? x : y));
    case 'Reshape':
      return { ...a!, shape: reshapeTarget(a!.shape, ints(b!)) } as HostTensor;
    case 'Transpose':
      return transposeHost(a!, ints(b!));
    case 'ExpandDims':
      return { ...a!, shape: expandDimsShape(a!.shape, ints(b!)[0]!) } as HostTensor;
    case 'Squeeze':
      return { ...a!, shape: squeezeShape(a!.shape, attrs.ints(node, 'squeeze_dims')) } as HostTensor;
    case 'ConcatV2':
      return concat(inputs.slice(0, -1), ints(inputs[inputs.length - 1]!)[0]!);
    case 'Pack': {
      const axis = attrs.int(node, 'axis', 0);
      const rank = a!.shape.length + 1;
      const ax = normAxis(axis, rank, 'Pack');
      return concat(inputs.map((t) => ({ ...t, shape: expandDimsShape(t.shape, ax) }) as HostTensor), ax);
    }
    case 'StridedSlice':
      return stridedSlice(node, a!, ints(b!), ints(c!), ints(inputs[3]!));
    case 'BroadcastTo': {
      const shape = ints(b!);
      return elementwise(a!.dtype, [a!], (x) => x, broadcastShapes(a!.shape, shape));
    }
    case 'Fill':
      return elementwise(b!.dtype, [b!], (x) => x, ints(a!));
    case 'Range':
      return range(node, a!, b!, c!);
    case 'Sum':
    case 'Prod':
    case 'Max':
    case 'Min':
    case 'Mean':
      return reduce(op, a!, ints(b!), attrs.bool(node, 'keep_dims'));
    case 'GatherV2':
      return gather(a!, b!, ints(c!)[0]!, attrs.int(node, 'batch_dims', 0));
    case 'Einsum':
      return einsum(attrs.str(node, 'equation'), a!, b!);
    default:
      throw new Error(`cannot evaluate ${op}`);
  }
}

export function ints(t: HostTensor): number[] {
  if (t.dtype === 'float32') throw new Error('expected an integer tensor');
  return Array.from(t.data);
}

function elementwise(dtype: HostDType, ins: readonly HostTensor[], fn: (...v: number[]) => number, outShape?: readonly number[]): HostTensor {
  let shape = outShape ? [...outShape] : [...ins[0]!.shape];
  if (!outShape) for (const t of ins.slice(1)) shape = broadcastShapes(shape, t.shape);
  const out = makeTensor(dtype, shape);
  const n = sizeOf(shape);
  const same = ins.every((t) => sizeOf(t.shape) === n);
  const offsets = same ? undefined : ins.map((t) => broadcastOffsets(t.shape, shape));
  const args = new Array<number>(ins.length);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < ins.length; j++) args[j] = ins[j]!.data[offsets ? offsets[j]![k]! : k]!;
    out.data[k] = fn(...args);
  }
  return out;
}

function cast(t: HostTensor, to: HostDType): HostTensor {
  if (t.dtype === to) return t;
  if (to === 'int32') return makeTensor('int32', t.shape, Array.from(t.data, (v) => Math.trunc(v) | 0));
  return makeTensor(to, t.shape, t.data);
}

export function reshapeTarget(from: readonly number[], to: readonly number[]): number[] {
  const n = sizeOf(from);
  const known = to.reduce((acc, d) => (d === -1 ? acc : acc * d), 1);
  const out = to.map((d) => (d === -1 ? n / known : d));
  if (sizeOf(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`cannot reshape [${from.join(', ')}] to [${to.join(', ')}]`);
  }
  return out;
}

export function expandDimsShape(shape: readonly number[], axis: number): number[] {
  const ax = normAxis(axis, shape.length + 1, 'ExpandDims');
  return [...shape.slice(0, ax), 1, ...shape.slice(ax)];
}

export function squeezeShape(shape: readonly number[], dims: readonly number[]): number[] {
  const drop = new Set(dims.length ? dims.map((d) => normAxis(d, shape.length, 'Squeeze')) : shape.flatMap((d, i) => (d === 1 ? [i] : [])));
  for (const d of drop) if (shape[d] !== 1) throw new Error(`Squeeze: axis ${d} has size ${shape[d]}`);
  return shape.filter((_, i) => !drop.has(i));
}

function concat(parts: readonly HostTensor[], axis: number): HostTensor {
  const first = parts[0]!;
  const ax = normAxis(axis, first.shape.length, 'ConcatV2');
  const shape = [...first.shape];
  shape[ax] = parts.reduce((s, p) => s + p.shape[ax]!, 0);
  const out = makeTensor(first.dtype, shape);
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const len = p.shape[ax]! * inner;
      out.data.set(p.data.subarray(o * len, (o + 1) * len) as never, at);
      at += len;
    }
  }
  return out;
}

function stridedSlice(node: TfNode, t: HostTensor, begin: number[], end: number[], strides: number[]): HostTensor {
  const s = resolveStridedSlice(t.shape, begin, end, strides, {
    begin: attrs.int(node, 'begin_mask', 0),
    end: attrs.int(node, 'end_mask', 0),
    ellipsis: attrs.int(node, 'ellipsis_mask', 0),
    newAxis: attrs.int(node, 'new_axis_mask', 0),
    shrinkAxis: attrs.int(node, 'shrink_axis_mask', 0),
  });
  const out = makeTensor(t.dtype, s.outShape);
  const st = stridesOf(t.shape);
  const n = sizeOf(s.counts);
  const idx = new Array<number>(s.counts.length).fill(0);
  for (let k = 0; k < n; k++) {
    let off = 0;
    for (let ax = 0; ax < idx.length; ax++) off += (s.begin[ax]! + idx[ax]! * s.step[ax]!) * st[ax]!;
    out.data[k] = t.data[off]!;
    for (let ax = idx.length - 1; ax >= 0; ax--) {
      if (++idx[ax]! < s.counts[ax]!) break;
      idx[ax] = 0;
    }
  }
  return out;
}

function range(node: TfNode, start: HostTensor, limit: HostTensor, delta: HostTensor): HostTensor {
  const [s, l, d] = [start.data[0]!, limit.data[0]!, delta.data[0]!];
  if (d === 0) throw new Error('Range: delta 0');
  const n = Math.max(0, Math.ceil((l - s) / d));
  const dtype = node.attr.Tidx ? attrs.dtype(node, 'Tidx') : start.dtype;
  return makeTensor(dtype, [n], Array.from({ length: n }, (_, i) => s + i * d));
}

function reduce(op: string, t: HostTensor, axesIn: number[], keep: boolean): HostTensor {
  const rank = t.shape.length;
  const axes = new Set(axesIn.map((a) => normAxis(a, rank, op)));
  const keptShape = t.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const outShape = keep ? keptShape : t.shape.filter((_, i) => !axes.has(i));
  const init = op === 'Prod' ? 1 : op === 'Max' ? -Infinity : op === 'Min' ? Infinity : 0;
  const acc = new Float64Array(sizeOf(keptShape)).fill(init);
  const offsets = broadcastOffsets(keptShape, t.shape);
  for (let k = 0; k < t.data.length; k++) {
    const o = offsets[k]!;
    const v = t.data[k]!;
    acc[o] = op === 'Prod' ? acc[o]! * v : op === 'Max' ? Math.max(acc[o]!, v) : op === 'Min' ? Math.min(acc[o]!, v) : acc[o]! + v;
  }
  const count = sizeOf(t.shape) / acc.length;
  return makeTensor(t.dtype, outShape, op === 'Mean' ? Array.from(acc, (v) => v / count) : acc);
}

function gather(params: HostTensor, indices: HostTensor, axis: number, batchDims: number): HostTensor {
  if (batchDims !== 0) throw new Error('GatherV2 with batch_dims is not supported');
  const ax = normAxis(axis, params.shape.length, 'GatherV2');
  const idx = ints(indices);
  const outer = sizeOf(params.shape.slice(0, ax));
  const inner = sizeOf(params.shape.slice(ax + 1));
  const dim = params.shape[ax]!;
  const out = makeTensor(params.dtype, [...params.shape.slice(0, ax), ...indices.shape, ...params.shape.slice(ax + 1)]);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const i of idx) {
      if (i < 0 || i >= dim) throw new Error(`GatherV2: index ${i} is out of range for an axis of ${dim}`);
      const from = (o * dim + i) * inner;
      out.data.set(params.data.subarray(from, from + inner) as never, at);
      at += inner;
    }
  }
  return out;
}

/** Two-operand einsum by explicit loops over every letter (folding only: sizes are small). */
function einsum(equation: string, a: HostTensor, b: HostTensor): HostTensor {
  const m = /^(\w+),(\w+)->(\w*)$/.exec(equation.replace(/\s/g, ''));
  if (!m) throw new Error(`Einsum '${equation}' is not of the form ab,bc->ac`);
  const [, la, lb, lo] = m as unknown as [string, string, string, string];
  const dims = new Map<string, number>();
  const note = (letters: string, shape: readonly number[]) => [...letters].forEach((l, i) => {
    const d = shape[i]!;
    if (dims.has(l) && dims.get(l) !== d) throw new Error(`Einsum '${equation}': '${l}' is ${dims.get(l)} and ${d}`);
    dims.set(l, d);
  });
  note(la, a.shape);
  note(lb, b.shape);
  const letters = [...dims.keys()];
  const sizes = letters.map((l) => dims.get(l)!);
  const strideIn = (ls: string, shape: readonly number[]) => {
    const st = stridesOf(shape);
    return letters.map((l) => [...ls].reduce((s, c, i) => (c === l ? s + st[i]! : s), 0));
  };
  const outShape = [...lo].map((l) => dims.get(l)!);
  const sa = strideIn(la, a.shape);
  const sb = strideIn(lb, b.shape);
  const so = strideIn(lo, outShape);
  const acc = new Float64Array(sizeOf(outShape));
  const idx = new Array<number>(letters.length).fill(0);
  const total = sizeOf(sizes);
  for (let k = 0; k < total; k++) {
    let oa = 0;
    let ob = 0;
    let oo = 0;
    for (let j = 0; j < letters.length; j++) {
      oa += idx[j]! * sa[j]!;
      ob += idx[j]! * sb[j]!;
      oo += idx[j]! * so[j]!;
    }
    acc[oo]! += a.data[oa]! * b.data[ob]!;
    for (let j = letters.length - 1; j >= 0; j--) {
      if (++idx[j]! < sizes[j]!) break;
      idx[j] = 0;
    }
  }
  return makeTensor(a.dtype, outShape, acc);
}
