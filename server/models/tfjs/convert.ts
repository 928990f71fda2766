/**
 * TF.js layers model (model.json + shards) → ONNX. The ONNX model always speaks 0..1 NCHW
 * float32: input `input` [batch, C, height, width], output `output`, clipped to 0..1, with the
 * model's own range scaling (e.g. ×255 in, ÷255 out for esrgan-slim/medium) inside the graph.
 */
import path from 'node:path';
import { GraphBuilder, type Value } from '../onnx/builder.ts';
import { badModel, readKerasModel, type KerasLayer, type KerasModel, type TensorRef } from './manifest.ts';
import type { ConvertContext, Tensor } from './context.ts';
import { emitterFor } from './layers.ts';
import { packageRanges, type ModelRanges } from './ranges.ts';
import { materialise } from './upsample.ts';
import { readWeights } from './weights.ts';

/**
 * Bump whenever a change alters the converted graph, so that shipped.ts's cache (keyed by the
 * package version) does not reuse a file an older converter wrote. 2: residual scaling folded.
 */
export const CONVERTER_VERSION = 2;

export interface ConvertOptions {
  /** Override the pixel ranges (default: from the owning @upscalerjs package, else 0..1). */
  ranges?: Omit<ModelRanges, 'source'>;
  /** Fold nearest-upsample + conv into conv + DepthToSpace (default true). */
  foldUpsample?: boolean;
  /** Fold residual scaling (MultiplyBeta) into convs, see layers.ts (default true). */
  foldScale?: boolean;
}

export interface ConvertResult {
  readonly bytes: Uint8Array;
  /** Output size / input size. */
  readonly scale: number;
  /** Conv multiply-adds per OUTPUT pixel, from the layer shapes of the original model. */
  readonly macsPerOutputPixel: number;
  readonly ranges: ModelRanges;
  readonly layerCounts: Readonly<Record<string, number>>;
  readonly opCounts: Readonly<Record<string, number>>;
}

export async function convertTfjsLayersModel(modelJsonPath: string, opts: ConvertOptions = {}): Promise<Uint8Array> {
  return (await convertTfjsLayersModelDetailed(modelJsonPath, opts)).bytes;
}

const refKey = (r: TensorRef): string => `${r[0]}:${r[1]}:${r[2]}`;

export async function convertTfjsLayersModelDetailed(modelJsonPath: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const model = await readKerasModel(modelJsonPath);
  checkLayers(model);
  const weights = await readWeights(model);
  const ranges: ModelRanges = opts.ranges
    ? { ...opts.ranges, source: 'options' }
    : (packageRanges(modelJsonPath) ?? { inputRange: [0, 1], outputRange: [0, 1], source: 'default' });

  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw badModel(model.file, `has ${model.inputs.length} inputs and ${model.outputs.length} outputs; only 1 → 1 image models are supported`);
  }
  const graphName = path.basename(path.dirname(path.resolve(modelJsonPath))); // e.g. 'x4'
  const g = new GraphBuilder({ name: graphName, producer: 'supir-studio tfjs-converter' });
  const ctx: ConvertContext = {
    g,
    file: model.file,
    weights,
    foldUpsample: opts.foldUpsample ?? true,
    foldScale: opts.foldScale ?? true,
    readers: readersOf(model),
    macsPerInputPixel: 0,
  };
  const consumers = countConsumers(model);
  const tensors = new Map<string, Tensor>();
  const layerCounts: Record<string, number> = {};

  const inputLayer = model.layers.find((l) => l.name === model.inputs[0]![0]);
  if (!inputLayer || inputLayer.className !== 'InputLayer') throw badModel(model.file, `input '${model.inputs[0]![0]}' is not an InputLayer`);
  const channels = inputChannels(model, inputLayer);
  const input = g.input('input', 'float32', ['batch', channels, 'height', 'width']);
  tensors.set(refKey([inputLayer.name, 0, 0]), { value: fromUnit(g, input, ranges.inputRange), channels, scale: [1, 1] });

  // Keras lists layers in creation order, which is usually but not always topological.
  const pending = model.layers.filter((l) => l !== inputLayer);
  while (pending.length > 0) {
    const ready = pending.findIndex((l) => l.inbound.every((node) => node.every((r) => tensors.has(refKey(r)))));
    if (ready < 0) {
      const stuck = pending[0]!;
      const missing = stuck.inbound.flat().find((r) => !tensors.has(refKey(r)));
      throw badModel(model.file, `layer '${stuck.name}' reads '${missing?.[0]}', which no layer produces (or a cycle)`);
    }
    const [layer] = pending.splice(ready, 1) as [KerasLayer];
    const emit = emitterFor(layer.className)!;
    layerCounts[layer.className] = (layerCounts[layer.className] ?? 0) + 1;
    layer.inbound.forEach((node, n) => {
      const key = refKey([layer.name, n, 0]);
      let t = emit(ctx, layer, node.map((r) => tensors.get(refKey(r))!));
      // Fold an upsample only into its sole reader; with several, build it once and share it.
      if (t.upsample && (consumers.get(key) ?? 0) > 1) t = { value: materialise(ctx, t), channels: t.channels, scale: t.scale };
      tensors.set(key, t);
    });
  }
  layerCounts.InputLayer = 1;

  const out = tensors.get(refKey(model.outputs[0]!));
  if (!out) throw badModel(model.file, `output '${model.outputs[0]![0]}' is never produced`);
  const unit = toUnit(g, materialise(ctx, out), ranges.outputRange);
  g.output(g.op('Clip', [unit, g.scalar(0), g.scalar(1)], {}, { name: 'output' }), 'output', 'float32', ['batch', out.channels, 'out_height', 'out_width']);
  if (out.scale[0] !== out.scale[1]) throw badModel(model.file, `output scale ${out.scale.join('x')} is not square`);
  return {
    bytes: g.toBytes(),
    scale: out.scale[0],
    macsPerOutputPixel: ctx.macsPerInputPixel / (out.scale[0] * out.scale[1]),
    ranges,
    layerCounts,
    opCounts: g.stats().opTypes,
  };
}

/** Fails before any weight is read, naming every unsupported layer at once. */
function checkLayers(model: KerasModel): void {
  const bad = model.layers.filter((l) => l.className !== 'InputLayer' && !emitterFor(l.className));
  if (bad.length > 0) {
    const list = bad.map((l) => `'${l.name}' (${l.className})`).join(', ');
    throw badModel(model.file, `unsupported layer type${bad.length > 1 ? 's' : ''}: ${list}`);
  }
}

function countConsumers(model: KerasModel): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of [...model.layers.flatMap((l) => l.inbound.flat()), ...model.outputs]) {
    counts.set(refKey(r), (counts.get(refKey(r)) ?? 0) + 1);
  }
  return counts;
}

/** The layers reading each layer; a model output counts as a reader of its own. */
function readersOf(model: KerasModel): Map<string, KerasLayer[]> {
  const readers = new Map<string, KerasLayer[]>();
  const add = (name: string, reader: KerasLayer): void => {
    readers.set(name, [...(readers.get(name) ?? []), reader]);
  };
  for (const layer of model.layers) for (const r of layer.inbound.flat()) add(r[0], layer);
  for (const r of model.outputs) add(r[0], { className: 'ModelOutput', name: r[0], config: {}, inbound: [] });
  return readers;
}

function inputChannels(model: KerasModel, layer: KerasLayer): number {
  const shape = layer.config.batch_input_shape ?? layer.config.batch_shape;
  const c = Array.isArray(shape) ? shape[3] : undefined;
  if (!Array.isArray(shape) || shape.length !== 4 || typeof c !== 'number') {
    throw badModel(model.file, `input layer '${layer.name}' shape ${JSON.stringify(shape)} is not [batch, h, w, channels]`);
  }
  return c;
}

/** 0..1 → the model's range: x·(hi−lo) + lo, skipping identity steps. */
function fromUnit(g: GraphBuilder, x: Value, [lo, hi]: readonly [number, number]): Value {
  let y = hi - lo === 1 ? x : g.op('Mul', [x, g.scalar(hi - lo)], {}, { name: 'to_model_range' });
  if (lo !== 0) y = g.op('Add', [y, g.scalar(lo)], {}, { name: 'to_model_offset' });
  return y;
}

/** The model's range → 0..1; divides (as upscaler does) rather than multiplying by 1/255. */
function toUnit(g: GraphBuilder, x: Value, [lo, hi]: readonly [number, number]): Value {
  const y = lo === 0 ? x : g.op('Sub', [x, g.scalar(lo)], {}, { name: 'from_model_offset' });
  return hi - lo === 1 ? y : g.op('Div', [y, g.scalar(hi - lo)], {}, { name: 'from_model_range' });
}
