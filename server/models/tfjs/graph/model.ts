/**
 * Reads a TF.js "graph-model" directory (tfjs-converter output of a TensorFlow SavedModel, e.g.
 * the @upscalerjs MAXIM packages): model.json's `modelTopology.node` list, its one input and
 * output from `signature`, and every Const's value from the weight shards. Like the layers-model
 * reader (../manifest.ts), a malformed file becomes a StudioError naming it.
 */
import { readFile } from 'node:fs/promises';
import { StudioError } from '../../../../nodes/api/errors.ts';
import { badModel, parseManifest } from '../manifest.ts';
import { decode, forEachWeight } from '../weights.ts';
import type { HostTensor } from './tensor.ts';

/** One TensorFlow node. `inputs` are producer names (":0" dropped; control inputs removed). */
export interface TfNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly attr: Readonly<Record<string, TfAttr>>;
}

/** The attribute shapes tfjs-converter writes (a protobuf AttrValue as JSON). */
export interface TfAttr {
  s?: string;
  i?: string;
  f?: number;
  b?: boolean;
  type?: string;
  list?: { i?: string[]; s?: string[]; f?: number[] };
  shape?: unknown;
  tensor?: unknown;
}

export interface GraphModel {
  readonly file: string;
  readonly nodes: ReadonlyMap<string, TfNode>;
  /** The placeholder's node name and its declared shape (-1 = any). */
  readonly input: { readonly name: string; readonly shape: readonly number[] };
  /** The node whose value is the model's output. */
  readonly output: string;
  readonly constants: ReadonlyMap<string, HostTensor>;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readGraphModel(file: string): Promise<GraphModel> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw new StudioError('NOT_FOUND', `TF.js model ${file}: cannot read the file`);
    throw badModel(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(json) || json.format !== 'graph-model' || !isObj(json.modelTopology) || !Array.isArray(json.modelTopology.node)) {
    throw badModel(file, 'not a TF.js graph model (format "graph-model" with modelTopology.node)');
  }
  const nodes = new Map<string, TfNode>();
  for (const [i, raw] of json.modelTopology.node.entries()) {
    if (!isObj(raw) || typeof raw.name !== 'string' || typeof raw.op !== 'string') throw badModel(file, `node #${i} has no name/op`);
    const inputs = (Array.isArray(raw.input) ? raw.input : []).filter((n): n is string => typeof n === 'string' && !n.startsWith('^'));
    for (const n of inputs) {
      // Only single-output producers occur in these models; ":k" with k > 0 would need more.
      const m = /^(.*?)(?::(\d+))?$/.exec(n)!;
      if (m[2] !== undefined && m[2] !== '0') throw badModel(file, `node '${raw.name}' reads output ${m[2]} of '${m[1]}'; only first outputs are supported`);
    }
    nodes.set(raw.name, { name: raw.name, op: raw.op, inputs: inputs.map((n) => n.replace(/:0$/, '')), attr: (isObj(raw.attr) ? raw.attr : {}) as TfNode['attr'] });
  }
  const { input, output } = signature(file, json.signature, nodes);
  const constants = new Map<string, HostTensor>();
  await forEachWeight({ file, groups: parseManifest(file, json.weightsManifest) }, (spec, bytes, count) => {
    const shape = [...spec.shape];
    if (spec.dtype === 'int32' && !spec.quantization) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt32(i * 4, true);
      constants.set(spec.name, { dtype: 'int32', shape, data });
    } else {
      constants.set(spec.name, { dtype: 'float32', shape, data: decode(spec, bytes, count) });
    }
  });
  for (const node of nodes.values()) {
    if (node.op === 'Const' && !constants.has(node.name)) throw badModel(file, `constant '${node.name}' has no value in the weight shards`);
  }
  return { file, nodes, input, output, constants };
}

/** The one float image input and output named by `signature` (or the lone Placeholder / Identity). */
function signature(file: string, raw: unknown, nodes: Map<string, TfNode>): Pick<GraphModel, 'input' | 'output'> {
  const sig = isObj(raw) ? raw : {};
  const ins = isObj(sig.inputs) ? Object.values(sig.inputs) : [];
  const outs = isObj(sig.outputs) ? Object.values(sig.outputs) : [];
  if (ins.length !== 1 || outs.length !== 1) throw badModel(file, `has ${ins.length} inputs and ${outs.length} outputs in its signature; only 1 → 1 image models are supported`);
  const nameOf = (t: unknown): string => (isObj(t) && typeof t.name === 'string' ? t.name.replace(/:0$/, '') : '');
  const inName = nameOf(ins[0]);
  const outName = nameOf(outs[0]);
  const placeholder = nodes.get(inName);
  if (!placeholder || placeholder.op !== 'Placeholder') throw badModel(file, `signature input '${inName}' is not a Placeholder node`);
  if (!nodes.has(outName)) throw badModel(file, `signature output '${outName}' is not a node`);
  const dims = (isObj(ins[0]) && isObj(ins[0].tensorShape) && Array.isArray(ins[0].tensorShape.dim) ? ins[0].tensorShape.dim : []) as unknown[];
  const shape = dims.map((d) => Number(isObj(d) ? (d.size ?? -1) : -1));
  if (shape.length !== 4) throw badModel(file, `input '${inName}' has rank ${shape.length}; expected [batch, height, width, channels]`);
  return { input: { name: inName, shape }, output: outName };
}

/** Attribute readers: protobuf JSON writes int64 as strings and bytes as base64. */
export const attrs = {
  int(node: TfNode, name: string, fallback?: number): number {
    const v = node.attr[name]?.i;
    if (v === undefined) {
      if (fallback === undefined) throw new Error(`${node.op} '${node.name}' has no attribute ${name}`);
      return fallback;
    }
    return Number(v);
  },
  ints(node: TfNode, name: string): number[] {
    return (node.attr[name]?.list?.i ?? []).map(Number);
  },
  str(node: TfNode, name: string, fallback?: string): string {
    const v = node.attr[name]?.s;
    if (v === undefined) {
      if (fallback === undefined) throw new Error(`${node.op} '${node.name}' has no attribute ${name}`);
      return fallback;
    }
    return Buffer.from(v, 'base64').toString('utf8');
  },
  bool(node: TfNode, name: string, fallback = false): boolean {
    return node.attr[name]?.b ?? fallback;
  },
  /** DT_FLOAT → 'float32', DT_INT32 → 'int32', DT_BOOL → 'bool'. */
  dtype(node: TfNode, name: string): HostTensor['dtype'] {
    const t = node.attr[name]?.type;
    if (t === 'DT_FLOAT') return 'float32';
    if (t === 'DT_INT32') return 'int32';
    if (t === 'DT_BOOL') return 'bool';
    throw new Error(`${node.op} '${node.name}': dtype ${t ?? '(none)'} in ${name} is not supported`);
  },
};
