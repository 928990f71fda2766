/**
 * Reads a TF.js "layers-model" directory: model.json (Keras topology + weights manifest) and the
 * binary shards it names. Everything a person could get wrong on disk (bad JSON, a missing or
 * short shard, an odd dtype) becomes a StudioError naming the file, since these files come from
 * packages and downloads we do not control.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StudioError } from '../../../nodes/api/errors.ts';

/** One Keras layer as written in model_config.config.layers. */
export interface KerasLayer {
  readonly className: string;
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** Per call of the layer: the [layer, nodeIndex, tensorIndex] it reads. */
  readonly inbound: ReadonlyArray<ReadonlyArray<TensorRef>>;
}

export type TensorRef = readonly [layer: string, node: number, tensor: number];

export interface KerasModel {
  readonly file: string;
  readonly layers: readonly KerasLayer[];
  readonly inputs: readonly TensorRef[];
  readonly outputs: readonly TensorRef[];
  readonly weightSpecs: readonly WeightSpec[];
  readonly groups: ReadonlyArray<{ paths: readonly string[]; weights: readonly WeightSpec[] }>;
}

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

export function badModel(file: string, reason: string): StudioError {
  return new StudioError('BAD_INPUT', `TF.js model ${file}: ${reason}`);
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readKerasModel(file: string): Promise<KerasModel> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new StudioError('NOT_FOUND', `TF.js model ${file}: cannot read the file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badModel(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(json) || !isObj(json.modelTopology)) throw badModel(file, 'no modelTopology (not a TF.js layers model)');
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw badModel(file, `format '${String(json.format)}' is not 'layers-model' (graph models are not supported)`);
  }
  // tfjs-converter writes `model_config`; models saved from TF.js itself have `config` at the top.
  const topo = json.modelTopology;
  const modelConfig = isObj(topo.model_config) ? topo.model_config : topo;
  const config = modelConfig.config;
  if (!isObj(config) || !Array.isArray(config.layers)) throw badModel(file, 'modelTopology has no layers list');
  if (modelConfig.class_name === 'Sequential') throw badModel(file, 'Sequential models are not supported, only Functional');
  const layers = config.layers.map((l, i) => parseLayer(file, l, i));
  const groups = parseManifest(file, json.weightsManifest);
  return {
    file,
    layers,
    inputs: parseRefs(file, config.input_layers, 'input_layers'),
    outputs: parseRefs(file, config.output_layers, 'output_layers'),
    weightSpecs: groups.flatMap((g) => g.weights),
    groups,
  };
}

function parseLayer(file: string, raw: unknown, index: number): KerasLayer {
  if (!isObj(raw) || typeof raw.class_name !== 'string' || !isObj(raw.config)) {
    throw badModel(file, `layer #${index} has no class_name/config`);
  }
  const name = typeof raw.name === 'string' ? raw.name : String(raw.config.name ?? `#${index}`);
  const nodes = Array.isArray(raw.inbound_nodes) ? raw.inbound_nodes : [];
  const inbound = nodes.map((node) => parseInboundNode(file, name, node));
  return { className: raw.class_name, name, config: raw.config, inbound };
}

/** Keras 2 writes `[[layer, node, tensor, kwargs], ...]`; Keras 3 writes `{args: [keras tensors]}`. */
function parseInboundNode(file: string, layer: string, node: unknown): TensorRef[] {
  if (Array.isArray(node)) return node.map((ref) => parseRef(file, ref, `layer '${layer}' inbound`));
  if (isObj(node) && Array.isArray(node.args)) {
    const flat = node.args.flatMap((a) => (Array.isArray(a) ? a : [a]));
    return flat.map((a) => {
      const history = isObj(a) && isObj(a.config) ? a.config.keras_history : undefined;
      return parseRef(file, history, `layer '${layer}' inbound`);
    });
  }
  throw badModel(file, `layer '${layer}' has an unreadable inbound node`);
}

function parseRef(file: string, ref: unknown, where: string): TensorRef {
  if (Array.isArray(ref) && typeof ref[0] === 'string' && Number.isInteger(ref[1]) && Number.isInteger(ref[2])) {
    return [ref[0], ref[1] as number, ref[2] as number];
  }
  throw badModel(file, `${where}: bad tensor reference ${JSON.stringify(ref)}`);
}

function parseRefs(file: string, raw: unknown, key: string): TensorRef[] {
  if (!Array.isArray(raw) || raw.length === 0) throw badModel(file, `no ${key}`);
  // A single reference may be written without the outer list.
  const list = typeof raw[0] === 'string' ? [raw] : raw;
  return list.map((r) => parseRef(file, r, key));
}

export function parseManifest(file: string, raw: unknown): KerasModel['groups'] {
  if (!Array.isArray(raw)) throw badModel(file, 'no weightsManifest');
  return raw.map((g, gi) => {
    if (!isObj(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw badModel(file, `weightsManifest group #${gi} has no paths/weights`);
    }
    const paths = g.paths.map((p) => {
      if (typeof p !== 'string' || p.includes('..') || path.isAbsolute(p)) throw badModel(file, `bad shard path ${JSON.stringify(p)}`);
      return p;
    });
    return { paths, weights: g.weights.map((w) => parseWeightSpec(file, w)) };
  });
}

function parseWeightSpec(file: string, raw: unknown): WeightSpec {
  if (!isObj(raw) || typeof raw.name !== 'string' || !Array.isArray(raw.shape)) {
    throw badModel(file, `bad weight entry ${JSON.stringify(raw)?.slice(0, 120)}`);
  }
  const shape = raw.shape.map((d) => {
    if (!Number.isInteger(d) || (d as number) < 0) throw badModel(file, `weight '${String(raw.name)}' has a bad shape`);
    return d as number;
  });
  if (raw.dtype !== 'float32' && raw.dtype !== 'int32') {
    throw badModel(file, `weight '${raw.name}' has unsupported dtype '${String(raw.dtype)}'`);
  }
  const q = raw.quantization;
  if (q === undefined) return { name: raw.name, shape, dtype: raw.dtype };
  if (!isObj(q) || (q.dtype !== 'uint8' && q.dtype !== 'uint16' && q.dtype !== 'float16')) {
    throw badModel(file, `weight '${raw.name}' has unsupported quantization ${JSON.stringify(q)}`);
  }
  if (q.dtype !== 'float16' && (typeof q.scale !== 'number' || typeof q.min !== 'number')) {
    throw badModel(file, `weight '${raw.name}': ${q.dtype} quantization needs scale and min`);
  }
  return {
    name: raw.name,
    shape,
    dtype: raw.dtype,
    quantization: { dtype: q.dtype, ...(typeof q.scale === 'number' ? { scale: q.scale } : {}), ...(typeof q.min === 'number' ? { min: q.min } : {}) },
  };
}
