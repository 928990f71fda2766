/**
 * The thin layer between our plain records and the protobufjs classes of `onnx-proto`.
 * Kept apart from the builder so the builder never touches protobufjs types; the streaming
 * external-data writer (export.ts) resolves lazy tensors before it calls `encodeModel`.
 */
import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool';
export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

/** ONNX TensorProto.DataType codes. */
export const DTYPE_CODE: Readonly<Record<DType, number>> = {
  float32: 1,
  bool: 9,
  int32: 6,
  int64: 7,
  float16: 10,
};

/** The typed array each dtype must be given as (float16 travels as raw Uint16 bits). */
const DTYPE_ARRAY: Readonly<Record<DType, string>> = {
  float32: 'Float32Array',
  float16: 'Uint16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  bool: 'Uint8Array',
};

export function dtypeOf(data: TensorData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint16Array) return 'float16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'bool';
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { float32: 4, float16: 2, int32: 4, int64: 8, bool: 1 };

/**
 * A tensor whose values stay where they are (a checkpoint on disk) until a writer asks for them:
 * the model writer reads, converts and writes one such tensor at a time, so a model of many GB
 * never sits in memory whole. `read()` must return a fresh array of `dtype` and `dims` each time.
 */
export interface LazyTensorData {
  readonly lazy: true;
  readonly dtype: DType;
  readonly dims: readonly number[];
  read(): Promise<TensorData>;
}

/**
 * A lazy tensor whose content hash (`contentHash` of its values under its dtype and dims) was
 * taken when it was first read, so the builder can deduplicate it without holding its values.
 */
export interface LazyWeight extends LazyTensorData {
  readonly hash: string;
}

export function isLazy(data: TensorData | LazyTensorData): data is LazyTensorData {
  return 'lazy' in data && data.lazy === true;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, d) => a * d, 1);
}

/** The identity the builder deduplicates weights by: dtype, dims and bytes. */
export function contentHash(data: TensorData, dims: readonly number[], dtype: DType): string {
  return createHash('sha256').update(`${dtype}[${dims.join(',')}]`).update(bytesOf(data)).digest('hex');
}

/** The values of a tensor, reading a lazy one (and checking that what came back fits). */
export async function resolveTensorData(data: TensorData | LazyTensorData, what: string): Promise<TensorData> {
  if (!isLazy(data)) return data;
  const values = await data.read();
  try {
    checkTensorData(values, data.dims, data.dtype);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  return values;
}

export function checkTensorData(data: TensorData, dims: readonly number[], dtype: DType): void {
  if (data.constructor.name !== DTYPE_ARRAY[dtype]) {
    throw new Error(`${dtype} tensor needs a ${DTYPE_ARRAY[dtype]}, got ${data.constructor.name}`);
  }
  const count = dims.reduce((a, d) => a * d, 1);
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || count !== data.length) {
    throw new Error(`tensor of ${data.length} elements does not fit dims [${dims.join(', ')}]`);
  }
}

/** Little-endian bytes of a typed array; a view, no copy (all targets we run on are LE). */
export function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] };

const ATTR = onnx.AttributeProto.AttributeType;
const utf8 = new TextEncoder();

/** Numbers are INTs unless wrapped: ONNX ops are strict about INT vs FLOAT attributes. */
export function encodeAttr(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an int (wrap floats as { float })`);
    return { name, type: ATTR.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: ATTR.STRING, s: utf8.encode(value) };
  if (Array.isArray(value)) {
    if (value.every((v): v is string => typeof v === 'string') && value.length > 0) {
      return { name, type: ATTR.STRINGS, strings: value.map((v) => utf8.encode(v)) };
    }
    const ints = value as number[];
    if (!ints.every((v) => Number.isInteger(v))) throw new Error(`attribute ${name}: non-int in int list`);
    return { name, type: ATTR.INTS, ints };
  }
  if ('float' in value) return { name, type: ATTR.FLOAT, f: value.float };
  return { name, type: ATTR.FLOATS, floats: value.floats };
}

export interface TensorRecord {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Lazy data has to be resolved (export.ts) or written externally before `encodeModel` sees it inline. */
  readonly data: TensorData | LazyTensorData;
}

export interface NodeRecord {
  readonly name: string;
  readonly opType: string;
  /** The operator set's domain; absent for the standard ONNX ops. */
  readonly domain?: string;
  /** Computes in float32 in a half-precision model too (not serialised; see half.ts). */
  readonly float32?: boolean;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface IoRecord {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: ReadonlyArray<number | string>;
}

export interface ModelRecord {
  readonly graphName: string;
  readonly producer: string;
  readonly opset: number;
  readonly inputs: readonly IoRecord[];
  readonly outputs: readonly IoRecord[];
  readonly initializers: readonly TensorRecord[];
  readonly nodes: readonly NodeRecord[];
}

function valueInfo(io: IoRecord): onnxProto.onnx.IValueInfoProto {
  const dim = io.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name: io.name, type: { tensorType: { elemType: DTYPE_CODE[io.dtype], shape: { dim } } } };
}

/** IR version 8 is the one that goes with opset 17..18; ORT reads it everywhere. */
const IR_VERSION = 8;

/** Where a tensor's bytes went when they were written beside the model instead of inside it. */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export function encodeModel(model: ModelRecord, external?: (t: TensorRecord) => ExternalRef | undefined): Uint8Array {
  const graph: onnxProto.onnx.IGraphProto = {
    name: model.graphName,
    input: model.inputs.map(valueInfo),
    output: model.outputs.map(valueInfo),
    initializer: model.initializers.map((t) => {
      const ref = external?.(t);
      const base = { name: t.name, dataType: DTYPE_CODE[t.dtype], dims: [...t.dims] };
      if (!ref) {
        if (isLazy(t.data)) throw new Error(`initializer '${t.name}' is lazy: write the model with writeModel (export.ts), which reads it`);
        return { ...base, rawData: bytesOf(t.data) };
      }
      return {
        ...base,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: ref.location },
          { key: 'offset', value: String(ref.offset) },
          { key: 'length', value: String(ref.length) },
        ],
      };
    }),
    node: model.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      ...(n.domain ? { domain: n.domain } : {}),
      input: [...n.inputs],
      output: [...n.outputs],
      attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v)),
    })),
  };
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: model.producer,
    opsetImport: [{ domain: '', version: model.opset }, ...[...new Set(model.nodes.flatMap((n) => (n.domain ? [n.domain] : [])))].map((domain) => ({ domain, version: 1 }))],
    graph,
  });
  return onnx.ModelProto.encode(proto).finish();
}
