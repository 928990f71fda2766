/**
 * Rewrites what jax2tf spells out op by op into single nodes the emitter writes as one ONNX op
 * each, so onnxruntime runs one kernel instead of about a dozen passes over the activation:
 * layer norms (`_LayerNorm` → LayerNormalization; MAXIM has 240-360) and tanh GELUs (`_FastGelu`
 * → com.microsoft FastGelu). The layer norm's spelled-out form is flax's LayerNorm over the last
 * axis:
 *
 *   mean = Sum(x)·(1/C)      var = max(0, Sum(x²)·(1/C) − mean²)
 *   y    = (x − mean) · (rsqrt(var + eps) · gamma) + beta
 *
 * Only that exact shape is matched (op types, operand roles, 1/C and eps as constants); anything
 * else is left as it is and converts op by op. The fused kernel computes the variance as
 * mean((x − mean)²), which differs from the spelled-out form by float rounding only.
 */
import type { GraphModel, TfNode } from './model.ts';
import type { HostTensor } from './tensor.ts';

export interface Fused {
  readonly model: GraphModel;
  readonly layerNorms: number;
  readonly gelus: number;
}

/** Both rewrites, layer norms first. */
export function fuse(model: GraphModel): Fused {
  const ln = fuseLayerNorms(model);
  const gelu = fuseGelus(ln.model);
  return { model: gelu.model, layerNorms: ln.count, gelus: gelu.count };
}

/**
 * GELU's tanh form as jax spells it, 0.5·x · (1 + tanh(√(2/π) · (x + 0.044715·x·x²))), becomes
 * `_FastGelu` (onnxruntime's com.microsoft FastGelu computes exactly that formula).
 */
export function fuseGelus(model: GraphModel): { model: GraphModel; count: number } {
  const nodes = new Map(model.nodes);
  let count = 0;
  const scalar = (name: string | undefined): number | undefined => {
    const n = name === undefined ? undefined : model.nodes.get(name);
    const t = n?.op === 'Const' ? model.constants.get(n.name) : undefined;
    return t && t.dtype === 'float32' && t.data.length === 1 ? t.data[0] : undefined;
  };
  const near = (v: number | undefined, want: number): boolean => v !== undefined && Math.abs(v - want) <= 1e-6 * Math.abs(want);
  /** A binary op's operands as [the scalar constant, the other] when one is a scalar constant. */
  const withScalar = (n: TfNode | undefined, op: string): [number, string] | undefined => {
    if (n?.op !== op || n.inputs.length !== 2) return undefined;
    const [a, b] = n.inputs as [string, string];
    const sa = scalar(a);
    if (sa !== undefined) return [sa, b];
    const sb = scalar(b);
    return sb !== undefined ? [sb, a] : undefined;
  };
  for (const node of model.nodes.values()) {
    if (node.op !== 'Mul' || node.inputs.length !== 2) continue;
    for (const [halfName, onePlusName] of [node.inputs, [...node.inputs].reverse()] as Array<readonly string[]>) {
      const half = withScalar(model.nodes.get(halfName!), 'Mul');
      const onePlus = withScalar(model.nodes.get(onePlusName!), 'AddV2');
      if (!half || !near(half[0], 0.5) || !onePlus || !near(onePlus[0], 1)) continue;
      const x = half[1];
      const tanh = model.nodes.get(onePlus[1]);
      const inner = withScalar(model.nodes.get(tanh?.op === 'Tanh' ? tanh.inputs[0]! : ''), 'Mul');
      if (!inner || !near(inner[0], Math.sqrt(2 / Math.PI))) continue;
      const sum = model.nodes.get(inner[1]);
      if (sum?.op !== 'AddV2' || !sum.inputs.includes(x)) continue;
      const cube = model.nodes.get(sum.inputs[0] === x ? sum.inputs[1]! : sum.inputs[0]!);
      if (cube?.op !== 'Mul') continue;
      const parts = cube.inputs.map((n) => model.nodes.get(n));
      const square = parts.find((p) => p?.op === 'Square' && p.inputs[0] === x);
      const cx = parts.map((p) => withScalar(p, 'Mul')).find((m) => m && m[1] === x && near(m[0], 0.044715));
      if (!square || !cx) continue;
      nodes.set(node.name, { name: node.name, op: '_FastGelu', inputs: [x], attr: {} });
      count++;
      break;
    }
  }
  return { model: { ...model, nodes }, count };
}

export function fuseLayerNorms(model: GraphModel): { model: GraphModel; count: number } {
  const nodes = new Map(model.nodes);
  const constants = new Map(model.constants);
  let count = 0;
  for (const node of model.nodes.values()) {
    const m = node.op === 'AddV2' ? matchLayerNorm(model, node) : undefined;
    if (!m) continue;
    const epsName = `${node.name}/_fused_eps`;
    constants.set(epsName, { dtype: 'float32', shape: [], data: Float32Array.of(m.eps) });
    nodes.set(epsName, { name: epsName, op: 'Const', inputs: [], attr: {} });
    nodes.set(node.name, {
      name: node.name,
      op: '_LayerNorm',
      inputs: [m.x, m.gamma, m.beta, epsName],
      attr: { axis: { i: String(m.axis) }, k_mean: { f: m.kMean }, k_square: { f: m.kSquare } },
    });
    count++;
  }
  return { model: { ...model, nodes, constants }, count };
}

interface Match {
  x: string;
  gamma: string;
  beta: string;
  eps: number;
  /** The summed axis and the constants the sums are multiplied by (1/C when it is a mean). */
  axis: number;
  kMean: number;
  kSquare: number;
}

function matchLayerNorm(model: GraphModel, y: TfNode): Match | undefined {
  const get = (name: string | undefined): TfNode | undefined => (name === undefined ? undefined : model.nodes.get(name));
  const constOf = (name: string | undefined): HostTensor | undefined => {
    const n = get(name);
    return n?.op === 'Const' ? model.constants.get(n.name) : undefined;
  };
  const scalarOf = (name: string | undefined): number | undefined => {
    const t = constOf(name);
    return t && t.dtype === 'float32' && t.data.length === 1 ? t.data[0] : undefined;
  };
  /** The operands of a commutative binary op: [the one that is `op`, the other]. */
  const split = (n: TfNode | undefined, op: string): [TfNode, string] | undefined => {
    if (!n || n.inputs.length !== 2) return undefined;
    const [a, b] = n.inputs as [string, string];
    if (get(a)?.op === op) return [get(a)!, b];
    if (get(b)?.op === op) return [get(b)!, a];
    return undefined;
  };

  // y = (d · g) + beta
  const [scaled, beta] = split(y, 'Mul') ?? [];
  if (!scaled || !constOf(beta)) return undefined;
  // d · g, d = x − reshape(mean), g = rsqrt(...) · gamma
  const [d, g] = [get(scaled.inputs[0]), get(scaled.inputs[1])];
  const [sub, gNode] = d?.op === 'Sub' && g?.op === 'Mul' ? [d, g] : g?.op === 'Sub' && d?.op === 'Mul' ? [g, d] : [];
  if (!sub || !gNode) return undefined;
  const x = sub.inputs[0]!;
  const meanReshape = get(sub.inputs[1]);
  if (meanReshape?.op !== 'Reshape') return undefined;
  const mean = meanOf(get(meanReshape.inputs[0]), x);
  if (!mean) return undefined;
  // g = rsqrt(reshape(var) + eps) · gamma
  const [rsqrt, gamma] = split(gNode, 'Rsqrt') ?? [];
  if (!rsqrt || !constOf(gamma)) return undefined;
  const [varReshape, epsName] = split(get(rsqrt.inputs[0]), 'Reshape') ?? [];
  const eps = scalarOf(epsName);
  if (!varReshape || eps === undefined || get(rsqrt.inputs[0])?.op !== 'AddV2') return undefined;
  // var = max(0, mean(x²) − mean²)
  const [diff, zero] = split(get(varReshape.inputs[0]), 'Sub') ?? [];
  if (!diff || scalarOf(zero) !== 0 || get(varReshape.inputs[0])?.op !== 'Maximum') return undefined;
  const meanSq = meanOf(get(diff.inputs[0]), undefined);
  const sqMean = get(diff.inputs[1]);
  if (!meanSq || sqMean?.op !== 'Square' || sqMean.inputs[0] !== mean.name) return undefined;
  const sq = get(meanSq.sumOf);
  if (sq?.op !== 'Square' || sq.inputs[0] !== x) return undefined;
  if (meanSq.axis !== mean.axis) return undefined;
  return { x, gamma: gamma!, beta: beta!, eps, axis: mean.axis, kMean: mean.k, kSquare: meanSq.k };

  /** `Sum(v, last axis) · k` with k a constant; `input` checks v when given. */
  function meanOf(n: TfNode | undefined, input: string | undefined): (TfNode & { sumOf: string; axis: number; k: number }) | undefined {
    const [sum, kName] = split(n, 'Sum') ?? [];
    const k = scalarOf(kName);
    if (!n || n.op !== 'Mul' || !sum || k === undefined) return undefined;
    if (input !== undefined && sum.inputs[0] !== input) return undefined;
    const axes = constOf(sum.inputs[1]);
    if (!axes || axes.dtype !== 'int32' || axes.data.length !== 1) return undefined;
    if (sum.attr.keep_dims?.b) return undefined;
    return { ...n, sumOf: sum.inputs[0]!, axis: axes.data[0]!, k };
  }
}
