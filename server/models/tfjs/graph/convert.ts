/**
 * TF.js graph model (model.json + shards) → ONNX, for one fixed input size. The converted model
 * speaks what every image model here speaks: input `input` [1, 3, height, width] float32 in 0..1,
 * output `output` [1, 3, height·scale, width·scale] clipped to 0..1.
 *
 * Every node reachable from the output is visited once in dependency order. A node whose inputs
 * are all known is evaluated here (fold.ts); the others become ONNX ops (emit.ts). With the size
 * fixed, jax2tf's shape arithmetic and resize-matrix construction all fold away, and what
 * onnxruntime sees is convolutions, matmuls and elementwise math on the image.
 */
import { GraphBuilder } from '../../onnx/builder.ts';
import { badModel } from '../manifest.ts';
import { emit, onnxOf, type EmitContext, type Val } from './emit.ts';
import { canFold, fold } from './fold.ts';
import { fuse } from './fuse.ts';
import { readGraphModel, type GraphModel, type TfNode } from './model.ts';
import { sizeOf } from './tensor.ts';

/** Bumped when a change alters the ONNX written, so cached conversions of an older one are not reused. */
export const GRAPH_CONVERTER_VERSION = 4;

export interface GraphConvertOptions {
  readonly height: number;
  readonly width: number;
}

export interface GraphConvertResult {
  readonly bytes: Uint8Array;
  readonly scale: number;
  /** Nodes in the TF graph, those evaluated at conversion, and those that became ONNX ops. */
  readonly tfNodes: number;
  readonly folded: number;
  readonly emitted: number;
  /** Conv and MatMul multiply-adds of one run at this size. */
  readonly macs: number;
  /** Layer norms and GELUs written as one op each (fuse.ts). */
  readonly layerNorms: number;
  readonly gelus: number;
  readonly opCounts: Readonly<Record<string, number>>;
}

export async function convertTfjsGraphModel(modelJsonPath: string, opts: GraphConvertOptions): Promise<GraphConvertResult> {
  return convertGraph(await readGraphModel(modelJsonPath), opts);
}

export function convertGraph(original: GraphModel, { height, width }: GraphConvertOptions): GraphConvertResult {
  const { model, layerNorms, gelus } = fuse(original);
  const channels = model.input.shape[3]!;
  if (channels !== 3) throw badModel(model.file, `input has ${channels} channels; only RGB models are supported`);
  const g = new GraphBuilder({ name: 'tfjs-graph', producer: 'supir-studio tfjs-graph-converter' });
  const ctx: EmitContext = { g, macs: 0 };
  const values = new Map<string, Val>();
  const input = g.input('input', 'float32', [1, 3, height, width]);
  values.set(model.input.name, { kind: 'dyn', value: g.op('Transpose', [input], { perm: [0, 2, 3, 1] }), shape: [1, height, width, 3], dtype: 'float32' });

  const order = dependencyOrder(model);
  let folded = 0;
  let emitted = 0;
  for (const node of order) {
    if (values.has(node.name)) continue;
    if (node.op === 'Const') {
      values.set(node.name, { kind: 'host', t: model.constants.get(node.name)! });
      continue;
    }
    const ins = node.inputs.map((n) => values.get(n)!);
    try {
      if (node.op === 'Shape') {
        const shape = ins[0]!.kind === 'dyn' ? ins[0]!.shape : ins[0]!.t.shape;
        values.set(node.name, { kind: 'host', t: { dtype: 'int32', shape: [shape.length], data: Int32Array.from(shape) } });
        folded++;
      } else if (ins.every((v) => v.kind === 'host') && canFold(node.op) && !tooLargeToFold(node, ins)) {
        values.set(node.name, { kind: 'host', t: fold(node, ins.map((v) => (v as Extract<Val, { kind: 'host' }>).t)) });
        folded++;
      } else {
        values.set(node.name, emit(ctx, node, ins));
        emitted++;
      }
    } catch (err) {
      throw badModel(model.file, `${node.op} '${node.name}': ${(err as Error).message}`);
    }
  }

  const out = values.get(model.output)!;
  if (out.kind !== 'dyn' || out.shape.length !== 4 || out.shape[0] !== 1 || out.shape[3] !== 3) {
    throw badModel(model.file, `output '${model.output}' is not a [1, h, w, 3] image that depends on the input`);
  }
  const [, oh, ow] = out.shape as [number, number, number, number];
  if (oh * width !== ow * height || oh % height !== 0) throw badModel(model.file, `output ${ow}x${oh} for a ${width}x${height} input is not a whole scale`);
  const nchw = g.op('Transpose', [onnxOf(ctx, out)], { perm: [0, 3, 1, 2] });
  g.output(g.op('Clip', [nchw, g.scalar(0), g.scalar(1)], {}, { name: 'output' }), 'output', 'float32', [1, 3, oh, ow]);
  return {
    bytes: g.toBytes(),
    scale: oh / height,
    tfNodes: original.nodes.size,
    folded,
    emitted,
    macs: ctx.macs,
    layerNorms,
    gelus,
    opCounts: g.stats().opTypes,
  };
}

/**
 * A known scalar broadcast to an activation's size would become a constant as large as the
 * activation: leave such expansions to run time, where they cost nothing.
 */
function tooLargeToFold(node: TfNode, ins: readonly Val[]): boolean {
  if (node.op !== 'BroadcastTo' && node.op !== 'Fill') return false;
  const shapeArg = node.op === 'BroadcastTo' ? ins[1] : ins[0];
  if (shapeArg?.kind !== 'host') return false;
  return sizeOf(Array.from(shapeArg.t.data)) > 1 << 16;
}

/** The nodes the output depends on, each after its inputs (iterative: graphs are deep). */
function dependencyOrder(model: GraphModel): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  const stack: Array<{ node: TfNode; next: number }> = [];
  const push = (name: string, from: string): void => {
    const node = model.nodes.get(name);
    if (!node) throw badModel(model.file, `node '${from}' reads '${name}', which is not in the graph`);
    const s = state.get(name);
    if (s === 2) return;
    if (s === 1) throw badModel(model.file, `the graph has a cycle through '${name}'`);
    state.set(name, 1);
    stack.push({ node, next: 0 });
  };
  push(model.output, 'signature');
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.node.inputs.length) {
      push(top.node.inputs[top.next++]!, top.node.name);
    } else {
      stack.pop();
      state.set(top.node.name, 2);
      order.push(top.node);
    }
  }
  return order;
}
