import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { textConditioning, tokenChunks } from '../../nodes/supir/lib/text-conditioning.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { eotRows } from '../../server/models/supir/text-blocks.ts';
import { BIGG_PREFIX, bigGConfig, CLIP_L_PREFIX, compileBigG, compileClipL } from '../../server/models/supir/text-encoders.ts';
import { ClipTokenizer } from '../../nodes/supir/lib/tokenizer.ts';
import { closeness } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

interface TinyConfig {
  clip_l_tiny: { hf_CLIPTextConfig: { num_attention_heads: number } };
  bigg_tiny: { open_clip_model_cfg: { text_cfg: { heads: number } } };
}

let golden: GoldenCase;
let atol: number;
let rtol: number;
const got: Record<string, Float32Array> = {};
let texts: string[];


async function runGraph(bytes: Uint8Array, ids: number[], rows: number): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const out = await session.run({ ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [rows, 77]) });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

beforeAll(async () => {
  golden = await loadGolden('text_encoders');
  ({ atol, rtol } = golden.json.tolerance);
  const cfg = JSON.parse(await readFile(path.join(GOLDEN_DIR, 'text_tiny_config.json'), 'utf8')) as TinyConfig;
  texts = Object.values((golden.json.call as { texts: Record<string, string> }).texts);
  const rows = texts.length;
  const clipL = compileClipL(await loadGoldenWeights('text_tiny_clip_l.safetensors', [CLIP_L_PREFIX]), { heads: cfg.clip_l_tiny.hf_CLIPTextConfig.num_attention_heads });
  const bigG = compileBigG(await loadGoldenWeights('text_tiny_bigg.safetensors', [BIGG_PREFIX]), { heads: cfg.bigg_tiny.open_clip_model_cfg.text_cfg.heads });
  const l = await runGraph(clipL.bytes, golden.ints('tokens_clip_l'), rows);
  const b = await runGraph(bigG.bytes, golden.ints('tokens_bigg'), rows);
  got.clip_l_penultimate = l.hidden!;
  got.bigg_penultimate = b.hidden!;
  got.bigg_pooled = b.pooled!;
  const cond = textConditioning({ clipL: l.hidden!, clipLWidth: clipL.config.width, bigG: b.hidden!, bigGWidth: bigG.config.width, pooled: b.pooled!, pooledDim: bigG.config.pooledDim! }, null);
  got.crossattn = cond.crossattn;
  got.vector = cond.vector;
}, 60_000);

describe('SDXL text encoders (golden text_encoders, 12 prompts, tiny CLIP-L + bigG)', () => {
  it('tokenizes every prompt to the recorded ids of both tokenizers', async () => {
    const tok = await ClipTokenizer.load(path.join(GOLDEN_DIR, 'tokenizer_bpe_simple_vocab_16e6.txt.gz'));
    const ids = tokenChunks(tok, texts, false);
    expect(Array.from(ids.clipL, Number)).toEqual(golden.ints('tokens_clip_l'));
    expect(Array.from(ids.bigG, Number)).toEqual(golden.ints('tokens_bigg'));
  });

  for (const name of ['clip_l_penultimate', 'bigg_penultimate', 'bigg_pooled', 'crossattn', 'vector']) {
    it(`${name} is within atol/rtol 1e-4`, () => {
      const want = golden.tensor(name);
      expect(got[name]!.length).toBe(want.data.length);
      const c = closeness(got[name]!, want.data, atol, rtol);
      expect(c.ok, `${name}: max |diff| ${c.maxAbs}`).toBe(true);
      // Measured on CPU: 3.5e-6 (CLIP-L, crossattn), 2.9e-6 (bigG hidden), 1.7e-6 (pooled, vector),
      // the size of the reference's own fp32-vs-fp64 error; a real slip costs ≥ 0.067 (README).
      expect(c.maxAbs).toBeLessThan(2e-5);
    });
  }

  it('adds size embeddings after the pooled part when given size rows', () => {
    const rows = texts.length;
    const sizes = Array.from({ length: rows }, () => ({ original: [64, 64] as const, crop: [0, 0] as const, target: [64, 64] as const }));
    const pooled = got.bigg_pooled!;
    const cond = textConditioning({ clipL: got.clip_l_penultimate!, clipLWidth: 64, bigG: got.bigg_penultimate!, bigGWidth: 64, pooled, pooledDim: 32 }, sizes, 16);
    expect(cond.vector.length).toBe(rows * (32 + 96));
    expect(Array.from(cond.vector.subarray(128, 160))).toEqual(Array.from(pooled.subarray(32, 64)));
    expect(() => textConditioning({ clipL: got.clip_l_penultimate!, clipLWidth: 64, bigG: got.bigg_penultimate!, bigGWidth: 64, pooled, pooledDim: 32 }, sizes.slice(1), 16)).toThrow(/size conditions/);
  });

  it('derives the sizes from the weights and checks the head count', async () => {
    const w = await loadGoldenWeights('text_tiny_bigg.safetensors', [BIGG_PREFIX]);
    expect(bigGConfig(w)).toMatchObject({ width: 64, layers: 4, heads: 1, context: 77, vocab: 49408, pooledDim: 32 });
    expect(() => bigGConfig(w, { heads: 3 })).toThrow(/heads/);
  });

  it('pools the FIRST maximum id, as torch.argmax does', async () => {
    const g = new GraphBuilder({ name: 'eot' });
    const ids = g.input('ids', 'int64', [2, 4]);
    const hidden = g.input('hidden', 'float32', [2, 4, 2]);
    g.output(eotRows(g, ids, hidden, 4), 'y', 'float32', [2, 2]);
    const session = await ort.InferenceSession.create(g.toBytes());
    const out = await session.run({
      ids: new ort.Tensor('int64', BigInt64Array.from([49406, 5, 49407, 49407, 49406, 49407, 0, 0], BigInt), [2, 4]),
      hidden: new ort.Tensor('float32', Float32Array.from({ length: 16 }, (_, i) => i), [2, 4, 2]),
    });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([4, 5, 10, 11]);
    await session.release();
  });
});
