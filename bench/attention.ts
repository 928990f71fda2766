/**
 * Attention memory at SDXL's sizes: one self-attention layer of the UNet's first attention level
 * (640 channels, 10 heads of 64, batch 2 for CFG, tokens = (latent/2)²) built as the fused
 * com.microsoft MultiHeadAttention op the compiler emits, against the same attention as MatMul +
 * Softmax (what the compiler emitted before: it materialises the [2, 10, T, T] scores and the
 * softmax's copy) and as the standard ONNX Attention op (opset 23), the other candidate. Each
 * variant runs in a fresh process; the figure is the growth of peak RSS over the run.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../server/models/onnx/builder.ts';
import { attention } from '../server/models/onnx/layers.ts';

const HEADS = 10;
const DIM = 64;
const BATCH = 2;

type Variant = 'unfused' | 'fused' | 'onnx23';

/** The standard ONNX Attention op (opset 23), which the builder (pinned to opset 17) does not emit. */
function onnxAttention23(tokens: number): Uint8Array {
  const io = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [BATCH, tokens, HEADS * DIM].map((d) => ({ dimValue: d })) } } } });
  const heads = (name: string) => ({ name, type: onnxProto.onnx.AttributeProto.AttributeType.INT, i: HEADS });
  const node = { opType: 'Attention', input: ['q', 'k', 'v'], output: ['out'], attribute: [heads('q_num_heads'), heads('kv_num_heads')] };
  const model = onnxProto.onnx.ModelProto.create({ irVersion: 10, opsetImport: [{ domain: '', version: 23 }], graph: { name: 'attention', input: ['q', 'k', 'v'].map(io), output: [io('out')], node: [node] } });
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

function graph(tokens: number, variant: Variant): Uint8Array {
  if (variant === 'onnx23') return onnxAttention23(tokens);
  const fused = variant === 'fused';
  const g = new GraphBuilder({ name: 'attention' });
  const width = HEADS * DIM;
  const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', [BATCH, tokens, width])) as [ReturnType<typeof g.input>, ReturnType<typeof g.input>, ReturnType<typeof g.input>];
  let out;
  if (fused) out = attention(g, q, k, v, HEADS, DIM);
  else {
    const split = (t: typeof q, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, g.int64s([0, 0, HEADS, DIM])])], { perm });
    const scores = g.op('MatMul', [g.op('Mul', [split(q, [0, 2, 1, 3]), g.scalar(1 / Math.sqrt(DIM))]), split(k, [0, 2, 3, 1])]);
    const o = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), split(v, [0, 2, 1, 3])]);
    out = g.op('Reshape', [g.op('Transpose', [o], { perm: [0, 2, 1, 3] }), g.int64s([0, 0, width])]);
  }
  g.output(out, 'out', 'float32', [BATCH, tokens, width]);
  return g.toBytes();
}

/** In the child: build, open, run once; print the peak-RSS growth over the run and its time. */
async function child(tokens: number, variant: Variant): Promise<void> {
  const session = await ort.InferenceSession.create(graph(tokens, variant), { intraOpNumThreads: 1 });
  const n = BATCH * tokens * HEADS * DIM;
  const feed = (): ort.Tensor => new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i)), [BATCH, tokens, HEADS * DIM]);
  const feeds = { q: feed(), k: feed(), v: feed() };
  const before = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  await session.run(feeds);
  const ms = performance.now() - t0;
  const after = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ grew: Math.max(0, after - before), ms }));
}

export async function measureAttention(log: (line: string) => void): Promise<void> {
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;
  log(`  one self-attention, 10 heads of 64, batch 2 (CFG), one thread; peak RSS growth over the run:`);
  for (const latent of [32, 64]) {
    const tokens = (latent / 2) ** 2;
    const run = (variant: Variant): { grew: number; ms: number } =>
      JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', path.resolve(import.meta.dirname, 'attention.ts'), '--child', String(tokens), variant], { encoding: 'utf8' })) as { grew: number; ms: number };
    const [before, after, standard] = [run('unfused'), run('fused'), run('onnx23')];
    const scores = BATCH * HEADS * tokens * tokens * 4;
    log(`  latent ${latent} (${tokens} tokens): MatMul+Softmax ${mb(before.grew)} (its scores alone ${mb(scores)}), ${before.ms.toFixed(0)} ms; ONNX Attention-23 ${mb(standard.grew)}, ${standard.ms.toFixed(0)} ms; MultiHeadAttention (ours) ${mb(after.grew)}, ${after.ms.toFixed(0)} ms (${(before.grew / Math.max(after.grew, 1)).toFixed(1)}x less memory than MatMul+Softmax)`);
  }
  const tokens = 64 * 64;
  const scores = BATCH * HEADS * tokens * tokens * 4;
  const io = 4 * BATCH * tokens * HEADS * DIM * 4;
  log(`  latent 128 (4096 tokens), estimated: MatMul+Softmax ≥ ${mb(2 * scores)} (scores + softmax copy); fused ~${mb(io)} (q, k, v and out: O(tokens))`);
}

if (process.argv[2] === '--child') await child(Number(process.argv[3]), process.argv[4] as Variant);
else if (import.meta.url === `file://${process.argv[1]}`) await measureAttention((l) => process.stdout.write(`${l}\n`));
