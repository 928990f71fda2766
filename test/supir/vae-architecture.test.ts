/**
 * The VAE compiler on the SDXL layout (4 levels, 2 res blocks, factor 8) rather than the tiny
 * golden one: key sets are generated the way sgm's Encoder/Decoder constructors create modules,
 * checked against the SDXL encoder's published parameter count, then compiled at reduced width
 * to confirm that the derived config is right, every weight is consumed and the shapes run.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { weightsFromMap, type Weights, type WeightTensor } from '../../server/models/onnx/layers.ts';
import { compileVae } from '../../server/models/supir/vae.ts';
import { vaeConfig } from '../../server/models/supir/vae-config.ts';

type Shapes = Map<string, number[]>;

function resnet(s: Shapes, p: string, cin: number, cout: number): void {
  s.set(`${p}.norm1.weight`, [cin]).set(`${p}.norm1.bias`, [cin]);
  s.set(`${p}.conv1.weight`, [cout, cin, 3, 3]).set(`${p}.conv1.bias`, [cout]);
  s.set(`${p}.norm2.weight`, [cout]).set(`${p}.norm2.bias`, [cout]);
  s.set(`${p}.conv2.weight`, [cout, cout, 3, 3]).set(`${p}.conv2.bias`, [cout]);
  if (cin !== cout) s.set(`${p}.nin_shortcut.weight`, [cout, cin, 1, 1]).set(`${p}.nin_shortcut.bias`, [cout]);
}

function attn(s: Shapes, p: string, c: number): void {
  s.set(`${p}.norm.weight`, [c]).set(`${p}.norm.bias`, [c]);
  for (const n of ['q', 'k', 'v', 'proj_out']) s.set(`${p}.${n}.weight`, [c, c, 1, 1]).set(`${p}.${n}.bias`, [c]);
}

function mid(s: Shapes, p: string, c: number): void {
  resnet(s, `${p}.mid.block_1`, c, c);
  attn(s, `${p}.mid.attn_1`, c);
  resnet(s, `${p}.mid.block_2`, c, c);
}

/** sgm Encoder.__init__ (double_z) as key → shape. */
function encoderShapes(s: Shapes, p: string, ch: number, mult: number[], nres: number, z: number): void {
  s.set(`${p}.conv_in.weight`, [ch, 3, 3, 3]).set(`${p}.conv_in.bias`, [ch]);
  let cin = ch;
  mult.forEach((m, i) => {
    for (let j = 0; j < nres; j++, cin = ch * m) resnet(s, `${p}.down.${i}.block.${j}`, cin, ch * m);
    if (i < mult.length - 1) s.set(`${p}.down.${i}.downsample.conv.weight`, [cin, cin, 3, 3]).set(`${p}.down.${i}.downsample.conv.bias`, [cin]);
  });
  mid(s, p, cin);
  s.set(`${p}.norm_out.weight`, [cin]).set(`${p}.norm_out.bias`, [cin]);
  s.set(`${p}.conv_out.weight`, [2 * z, cin, 3, 3]).set(`${p}.conv_out.bias`, [2 * z]);
}

/** sgm Decoder.__init__ as key → shape. */
function decoderShapes(s: Shapes, p: string, ch: number, mult: number[], nres: number, z: number): void {
  let cin = ch * mult[mult.length - 1]!;
  s.set(`${p}.conv_in.weight`, [cin, z, 3, 3]).set(`${p}.conv_in.bias`, [cin]);
  mid(s, p, cin);
  for (let i = mult.length - 1; i >= 0; i--) {
    for (let j = 0; j < nres + 1; j++, cin = ch * mult[i]!) resnet(s, `${p}.up.${i}.block.${j}`, cin, ch * mult[i]!);
    if (i > 0) s.set(`${p}.up.${i}.upsample.conv.weight`, [cin, cin, 3, 3]).set(`${p}.up.${i}.upsample.conv.bias`, [cin]);
  }
  s.set(`${p}.norm_out.weight`, [cin]).set(`${p}.norm_out.bias`, [cin]);
  s.set(`${p}.conv_out.weight`, [3, cin, 3, 3]).set(`${p}.conv_out.bias`, [3]);
}

function sdxlLayout(ch: number): Shapes {
  const s: Shapes = new Map();
  const r = 'first_stage_model';
  encoderShapes(s, `${r}.encoder`, ch, [1, 2, 4, 4], 2, 4);
  encoderShapes(s, `${r}.denoise_encoder`, ch, [1, 2, 4, 4], 2, 4);
  decoderShapes(s, `${r}.decoder`, ch, [1, 2, 4, 4], 2, 4);
  s.set(`${r}.quant_conv.weight`, [8, 8, 1, 1]).set(`${r}.quant_conv.bias`, [8]);
  s.set(`${r}.post_quant_conv.weight`, [4, 4, 1, 1]).set(`${r}.post_quant_conv.bias`, [4]);
  return s;
}

const count = (s: Shapes, prefix: string): number =>
  [...s].filter(([k]) => k.startsWith(prefix)).reduce((n, [, d]) => n + d.reduce((a, b) => a * b, 1), 0);

/** Small random weights (GroupNorm weights near 1), made when first read; records which keys were read. */
function randomWeights(s: Shapes): { w: Weights; read: Set<string> } {
  const made = new Map<string, WeightTensor>();
  const read = new Set<string>();
  const get = (k: string): WeightTensor => {
    const dims = s.get(k);
    if (!dims) return weightsFromMap(new Map(), 'synthetic SDXL VAE').get(k); // throws NOT_FOUND
    let t = made.get(k);
    if (!t) {
      const data = new Rng(made.size + 1).fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1)));
      const fanIn = dims.slice(1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < data.length; i++) data[i] = /norm.*weight$/.test(k) ? 1 + 0.1 * data[i]! : data[i]! / Math.sqrt(fanIn);
      made.set(k, (t = { data, dims }));
    }
    read.add(k);
    return t;
  };
  return { read, w: { has: (k) => s.has(k), get } };
}

describe('VAE compiler on the SDXL layout', () => {
  it('the generated key set has the SDXL VAE encoder size (34,163,592 parameters at ch 128)', () => {
    const real = sdxlLayout(128);
    expect(count(real, 'first_stage_model.denoise_encoder.')).toBe(34_163_592);
  });

  it('derives ch_mult [1,2,4,4], 2 res blocks and factor 8, consumes every weight and runs', async () => {
    const shapes = sdxlLayout(32);
    const { w, read } = randomWeights(shapes);
    const vae = compileVae(w);
    expect(vaeConfig(w)).toMatchObject({
      factor: 8,
      latentChannels: 4,
      encoder: { levelChannels: [32, 64, 128, 128], blocksPerLevel: 2, attnPerLevel: [0, 0, 0, 0], midAttention: true },
      decoder: { levelChannels: [32, 64, 128, 128], blocksPerLevel: 3, attnPerLevel: [0, 0, 0, 0], midAttention: true },
    });
    expect([...shapes.keys()].filter((k) => !read.has(k))).toEqual([]);

    const enc = await ort.InferenceSession.create(vae.denoiseEncoder, { intraOpNumThreads: 2 });
    const dec = await ort.InferenceSession.create(vae.decoder, { intraOpNumThreads: 2 });
    const image = new ort.Tensor('float32', new Rng(1).fillNormal(new Float32Array(3 * 32 * 48)), [1, 3, 32, 48]);
    const { mean } = await enc.run({ image });
    expect(mean!.dims).toEqual([1, 4, 4, 6]);
    const { image: out } = await dec.run({ latent: mean! });
    expect(out!.dims).toEqual([1, 3, 32, 48]);
    expect((out!.data as Float32Array).every(Number.isFinite)).toBe(true);
    await enc.release();
    await dec.release();
  });

  it('names what is missing or inconsistent', () => {
    const shapes = sdxlLayout(32);
    shapes.delete('first_stage_model.decoder.up.2.upsample.conv.weight');
    expect(() => vaeConfig(randomWeights(shapes).w)).toThrow(/decoder level 2: missing upsample/);
    const bad = sdxlLayout(32).set('first_stage_model.post_quant_conv.weight', [8, 4, 1, 1]);
    expect(() => vaeConfig(randomWeights(bad).w)).toThrow(/post_quant_conv gives 8 channels, the decoder takes 4/);
  });
});
