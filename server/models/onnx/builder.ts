/**
 * A compact ONNX graph builder (in the spirit of onnxscript / tinygrad): callers add inputs,
 * weights and ops; the builder keeps immutable records and serialises a ModelProto at the end.
 *
 * - `OpType` is a closed list: an op we have not checked in onnxruntime cannot slip in by typo.
 * - The opset is pinned per model (17 by default) so attribute/input conventions are fixed.
 * - Weights are deduplicated by content hash (shared biases, repeated constants cost nothing).
 * - `scope('down.0', fn)` prefixes names with dots, so weight names can be exactly the keys
 *   of a checkpoint (`down.0.conv.weight`), which later compilers rely on to map tensors.
 */
import {
  checkTensorData,
  contentHash,
  dtypeOf,
  elementCount,
  encodeAttr,
  encodeModel,
  isLazy,
  type AttrValue,
  type DType,
  type IoRecord,
  type LazyWeight,
  type ModelRecord,
  type NodeRecord,
  type TensorData,
  type TensorRecord,
} from './proto.ts';

export type { AttrValue, DType, LazyWeight, TensorData } from './proto.ts';

/** Every op the builder accepts; extend deliberately (and test it in onnxruntime) when needed. */
export const OP_TYPES = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Neg', 'Abs', 'Exp', 'Log', 'Erf', 'Tanh', 'Sin', 'Cos',
  'Relu', 'LeakyRelu', 'Sigmoid', 'Softmax', 'Clip', 'Min', 'Max', 'Where', 'Equal', 'Less', 'Greater', 'Not',
  'Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'AveragePool', 'MaxPool',
  'BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'GroupNormalization',
  'ReduceMean', 'ReduceSum', 'ReduceMax',
  'Identity', 'Cast', 'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Expand', 'Tile',
  'Concat', 'Split', 'Slice', 'Gather', 'Shape', 'ConstantOfShape', 'Range', 'Pad',
  'DepthToSpace', 'SpaceToDepth', 'Resize',
  // onnxruntime's contrib ops (domain com.microsoft, version 1): CPU and CUDA kernels.
  'MultiHeadAttention', 'FastGelu',
] as const;
export type OpType = (typeof OP_TYPES)[number];

/** Ops outside the standard ONNX domain, and theirs. */
const OP_DOMAINS: Partial<Record<OpType, string>> = { MultiHeadAttention: 'com.microsoft', FastGelu: 'com.microsoft' };

export interface Value {
  readonly name: string;
}

export interface GraphBuilderOptions {
  name: string;
  opset?: number;
  producer?: string;
}

/** Optional inputs are passed as null and written as '' (ONNX's "absent input"). */
const ABSENT = '';

export class GraphBuilder {
  readonly name: string;
  readonly opset: number;
  readonly producer: string;
  private readonly inputs: IoRecord[] = [];
  private readonly outputs: IoRecord[] = [];
  private readonly nodes: NodeRecord[] = [];
  private readonly tensors = new Map<string, TensorRecord>();
  private readonly byHash = new Map<string, string>();
  private readonly used = new Set<string>();
  private readonly prefixes: string[] = [];
  private float32Depth = 0;
  private counter = 0;

  constructor(opts: GraphBuilderOptions) {
    this.name = opts.name;
    this.opset = opts.opset ?? 17;
    this.producer = opts.producer ?? 'supir-studio';
  }

  /** A graph input. Names are global (not scoped): they are the model's public interface. */
  input(name: string, dtype: DType, dims: Array<number | string>): Value {
    this.claim(name);
    this.inputs.push({ name, dtype, dims: [...dims] });
    return { name };
  }

  /** Marks a value as a graph output under `name`, adding an Identity only if renaming is needed. */
  output(value: Value, name: string, dtype: DType, dims: Array<number | string>): void {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`duplicate graph output '${name}'`);
    let source = value.name;
    if (source !== name) {
      this.claim(name);
      this.nodes.push({ name: `${name}/Identity`, opType: 'Identity', inputs: [source], outputs: [name], attrs: {} });
      source = name;
    }
    this.outputs.push({ name: source, dtype, dims: [...dims] });
  }

  /**
   * A named weight (scoped). Identical content (dtype, dims, bytes) is stored once: a second
   * request returns the first Value, whatever name it asked for. A `LazyWeight` is kept as it is
   * (its values are read only when the model is written, see export.ts) and deduplicated by the
   * hash it carries, which is the hash its values would have here.
   */
  initializer(name: string, data: TensorData | LazyWeight, dims: number[], dtype?: DType): Value {
    let hash: string;
    if (isLazy(data)) {
      // The carried hash was taken under the lazy tensor's own dtype and dims: other ones would dedup wrongly.
      const as = dtype ?? data.dtype;
      if (as !== data.dtype || dims.length !== data.dims.length || dims.some((d, i) => d !== data.dims[i])) {
        throw new Error(`lazy weight '${name}' is ${data.dtype} [${data.dims.join(', ')}], asked for as ${as} [${dims.join(', ')}]`);
      }
      hash = data.hash;
      dtype = as;
    } else {
      dtype ??= dtypeOf(data);
      checkTensorData(data, dims, dtype);
      hash = contentHash(data, dims, dtype);
    }
    const existing = this.byHash.get(hash);
    if (existing !== undefined) return { name: existing };
    const full = this.scoped(name);
    this.claim(full);
    this.tensors.set(full, { name: full, dtype, dims: [...dims], data });
    this.byHash.set(hash, full);
    return { name: full };
  }

  /** An anonymous constant (shapes, scales, pads...), named by its hash so equal ones merge. */
  constant(data: TensorData, dims: number[], dtype: DType = dtypeOf(data)): Value {
    checkTensorData(data, dims, dtype);
    const hash = contentHash(data, dims, dtype);
    const existing = this.byHash.get(hash);
    if (existing !== undefined) return { name: existing };
    const name = `const.${hash.slice(0, 16)}`;
    this.claim(name);
    this.tensors.set(name, { name, dtype, dims: [...dims], data });
    this.byHash.set(hash, name);
    return { name };
  }

  /** Shorthands for the common 1-D constants. */
  int64s(values: readonly number[]): Value {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)), [values.length], 'int64');
  }

  scalar(value: number, dtype: 'float32' | 'int64' = 'float32'): Value {
    return dtype === 'int64'
      ? this.constant(BigInt64Array.of(BigInt(value)), [], 'int64')
      : this.constant(Float32Array.of(value), [], 'float32');
  }

  op(type: OpType, inputs: Array<Value | null>, attrs: Record<string, AttrValue> = {}, opts: { name?: string } = {}): Value {
    const [out] = this.opMulti(type, inputs, 1, attrs, opts);
    return out!;
  }

  opMulti(
    type: OpType,
    inputs: Array<Value | null>,
    outputs: number,
    attrs: Record<string, AttrValue> = {},
    opts: { name?: string } = {},
  ): Value[] {
    if (!(OP_TYPES as readonly string[]).includes(type)) throw new Error(`unsupported op type '${type}'`);
    const inputNames = inputs.map((v) => (v === null ? ABSENT : v.name));
    for (const n of inputNames) {
      if (n !== ABSENT && !this.used.has(n)) throw new Error(`${type}: input '${n}' is not defined in this graph`);
    }
    // Encode now so a bad attribute fails at the call that made it, not at toBytes().
    for (const [k, v] of Object.entries(attrs)) encodeAttr(`${type}.${k}`, v);
    const nodeName = this.unique(this.scoped(opts.name ?? type));
    const outs = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? nodeName : `${nodeName}:${i}`));
    if (outputs !== 1) this.used.add(nodeName); // reserve the base so `name:0` cannot repeat
    for (const o of outs) this.claim(o);
    const domain = OP_DOMAINS[type];
    this.nodes.push(Object.freeze({ name: nodeName, opType: type, ...(domain ? { domain } : {}), ...(this.float32Depth > 0 ? { float32: true } : {}), inputs: inputNames, outputs: outs, attrs: { ...attrs } }));
    return outs.map((name) => ({ name }));
  }

  /** Runs `fn` with `prefix` appended (dot-separated) to the names of weights and nodes it makes. */
  scope<T>(prefix: string, fn: () => T): T {
    this.prefixes.push(prefix);
    try {
      return fn();
    } finally {
      this.prefixes.pop();
    }
  }

  /**
   * Runs `fn` with every op it adds marked to compute in float32 even in a half-precision model
   * (half.ts): for values float16 cannot hold (token ids) or sums it would lose.
   */
  keepFloat32<T>(fn: () => T): T {
    this.float32Depth++;
    try {
      return fn();
    } finally {
      this.float32Depth--;
    }
  }

  /** Counts for reports and tests. */
  stats(): { nodes: number; initializers: number; parameters: number; opTypes: Record<string, number> } {
    const opTypes: Record<string, number> = {};
    for (const n of this.nodes) opTypes[n.opType] = (opTypes[n.opType] ?? 0) + 1;
    let parameters = 0;
    for (const t of this.tensors.values()) parameters += elementCount(t.dims);
    return { nodes: this.nodes.length, initializers: this.tensors.size, parameters, opTypes };
  }

  toBytes(): Uint8Array {
    return encodeModel(this.record());
  }

  /** The graph as plain records, for writers that transform or stream it (see export.ts). */
  record(): ModelRecord {
    if (this.outputs.length === 0) throw new Error(`graph '${this.name}' has no outputs`);
    return {
      graphName: this.name,
      producer: this.producer,
      opset: this.opset,
      inputs: this.inputs,
      outputs: this.outputs,
      initializers: [...this.tensors.values()],
      nodes: this.nodes,
    };
  }

  private scoped(name: string): string {
    return this.prefixes.length === 0 ? name : `${this.prefixes.join('.')}.${name}`;
  }

  private claim(name: string): void {
    if (name === ABSENT) throw new Error('empty value name');
    if (this.used.has(name)) throw new Error(`value name '${name}' is already used in graph '${this.name}'`);
    this.used.add(name);
  }

  /** Node names get a numeric suffix on repeats: `conv.Relu`, `conv.Relu_1`, ... */
  private unique(base: string): string {
    if (!this.used.has(base)) return base;
    for (;;) {
      const candidate = `${base}_${++this.counter}`;
      if (!this.used.has(candidate)) return candidate;
    }
  }
}
