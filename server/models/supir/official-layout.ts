/**
 * Every parameter key and shape the official constructors create (sgm UNetModel, GLVControl,
 * LightGLVUNet 'XL-base', sgm's AutoencoderKL Encoder/Decoder with SUPIR's denoise_encoder, HF
 * CLIPTextModel as SDXL's FrozenCLIPEmbedder holds it, OpenCLIP's text tower as
 * FrozenOpenCLIPEmbedder2 holds it), transcribed from the official code. It lets tests check the
 * architecture derivation on the real geometry without the real weights, and lets benchmarks build
 * the full-size networks and checkpoints with random weights. test/supir/unet-arch.test.ts and
 * test/supir/full-size-graph.test.ts check it against the tiny golden files (same keys and shapes)
 * and the published parameter counts.
 */
export interface UnetConfig {
  mc: number;
  mult: number[];
  nres: number;
  attnLevels: number[];
  depth: number[];
  ctx: number;
  adm: number;
  headChannels: number;
  /** LightGLVUNet's 320/640/1280 constants as this model sees them, and ZeroSFT's nhidden. */
  xl: Record<number, number>;
  nhidden: number;
}

/** Every parameter key and shape the official constructors create. */
export function officialKeys(cfg: UnetConfig, kind: 'unet' | 'control'): Map<string, number[]> {
  const p = kind === 'unet' ? 'model.diffusion_model' : 'model.control_model';
  const keys = new Map<string, number[]>();
  const add = (k: string, w: number[], bias = true): void => {
    keys.set(`${k}.weight`, w);
    if (bias) keys.set(`${k}.bias`, [w[0]!]);
  };
  const ted = cfg.mc * 4;
  const res = (q: string, ci: number, co: number): void => {
    add(`${q}.in_layers.0`, [ci]), add(`${q}.in_layers.2`, [co, ci, 3, 3]), add(`${q}.emb_layers.1`, [co, ted]);
    add(`${q}.out_layers.0`, [co]), add(`${q}.out_layers.3`, [co, co, 3, 3]);
    if (ci !== co) add(`${q}.skip_connection`, [co, ci, 1, 1]);
  };
  const st = (q: string, ch: number, depth: number): void => {
    add(`${q}.norm`, [ch]), add(`${q}.proj_in`, [ch, ch]), add(`${q}.proj_out`, [ch, ch]);
    for (let j = 0; j < depth; j++) {
      const b = `${q}.transformer_blocks.${j}`;
      for (const a of ['attn1', 'attn2']) {
        add(`${b}.${a}.to_q`, [ch, ch], false), add(`${b}.${a}.to_out.0`, [ch, ch]);
        for (const kv of ['to_k', 'to_v']) add(`${b}.${a}.${kv}`, [ch, a === 'attn1' ? ch : cfg.ctx], false);
      }
      add(`${b}.ff.net.0.proj`, [ch * 8, ch]), add(`${b}.ff.net.2`, [ch, ch * 4]);
      for (const n of ['norm1', 'norm2', 'norm3']) add(`${b}.${n}`, [ch]);
    }
  };
  add(`${p}.time_embed.0`, [ted, cfg.mc]), add(`${p}.time_embed.2`, [ted, ted]);
  add(`${p}.label_emb.0.0`, [ted, cfg.adm]), add(`${p}.label_emb.0.2`, [ted, ted]);
  add(`${p}.input_blocks.0.0`, [cfg.mc, 4, 3, 3]);
  const chans = [cfg.mc];
  let ch = cfg.mc;
  let i = 1;
  cfg.mult.forEach((m, level) => {
    for (let r = 0; r < cfg.nres; r++, i++) {
      res(`${p}.input_blocks.${i}.0`, ch, (ch = m * cfg.mc));
      if (cfg.attnLevels.includes(level)) st(`${p}.input_blocks.${i}.1`, ch, cfg.depth[level]!);
      chans.push(ch);
    }
    if (level < cfg.mult.length - 1) add(`${p}.input_blocks.${i++}.0.op`, [ch, ch, 3, 3]), chans.push(ch);
  });
  res(`${p}.middle_block.0`, ch, ch), st(`${p}.middle_block.1`, ch, cfg.depth.at(-1)!), res(`${p}.middle_block.2`, ch, ch);
  if (kind === 'control') {
    add(`${p}.input_hint_block.0`, [cfg.mc, 4, 3, 3]);
    return keys;
  }
  let k = 0;
  [...cfg.mult.entries()].reverse().forEach(([level, m]) => {
    for (let r = 0; r <= cfg.nres; r++, k++) {
      res(`${p}.output_blocks.${k}.0`, ch + chans.pop()!, (ch = m * cfg.mc));
      const attn = cfg.attnLevels.includes(level);
      if (attn) st(`${p}.output_blocks.${k}.1`, ch, cfg.depth[level]!);
      if (level > 0 && r === cfg.nres) add(`${p}.output_blocks.${k}.${attn ? 2 : 1}.conv`, [ch, ch, 3, 3]);
    }
  });
  add(`${p}.out.0`, [cfg.mc]), add(`${p}.out.2`, [4, cfg.mc, 3, 3]);
  // LightGLVUNet 'XL-base' (project_channel_scale 2): 10 ZeroSFT, ZeroCrossAttn inserted at 6 then 3.
  const x = (c: number): number => cfg.xl[c]!;
  const cond = [...Array<number>(4).fill(x(320)), ...Array<number>(3).fill(x(640)), ...Array<number>(3).fill(x(1280))];
  const concat = [x(320), x(320), x(640), x(640), x(640), x(1280), x(1280), x(1280), x(1280), 0];
  const mods: Array<(q: string) => void> = cond.map((c, j) => (q: string) => {
    const total = c + concat[j]!;
    add(`${q}.param_free_norm`, [total]), add(`${q}.mlp_shared.0`, [cfg.nhidden, c, 3, 3]);
    add(`${q}.zero_mul`, [total, cfg.nhidden, 3, 3]), add(`${q}.zero_add`, [total, cfg.nhidden, 3, 3]), add(`${q}.zero_conv`, [c, c, 1, 1]);
  });
  for (const j of [6, 3]) {
    const [context, query] = [cond[j]!, concat[j]!];
    const inner = Math.floor(query / 64) * 64;
    mods.splice(j, 0, (q) => {
      add(`${q}.attn.to_q`, [inner, query], false), add(`${q}.attn.to_k`, [inner, context], false), add(`${q}.attn.to_v`, [inner, context], false);
      add(`${q}.attn.to_out.0`, [query, inner]), add(`${q}.norm1`, [query]), add(`${q}.norm2`, [context]);
    });
  }
  mods.forEach((make, j) => make(`${p}.project_modules.${j}`));
  return keys;
}

export const TINY: UnetConfig = { mc: 32, mult: [1, 2, 2], nres: 2, attnLevels: [1, 2], depth: [1, 1, 2], ctx: 64, adm: 128, headChannels: 16, xl: { 320: 32, 640: 64, 1280: 64 }, nhidden: 24 };
export const SDXL: UnetConfig = { mc: 320, mult: [1, 2, 4], nres: 2, attnLevels: [1, 2], depth: [1, 2, 10], ctx: 2048, adm: 2816, headChannels: 64, xl: { 320: 320, 640: 640, 1280: 1280 }, nhidden: 128 };


/** sgm AutoencoderKL ddconfig: ch, ch_mult, num_res_blocks, z_channels (double_z, embed_dim = z). */
export interface VaeLayout {
  ch: number;
  mult: number[];
  nres: number;
  z: number;
}

export const SDXL_VAE: VaeLayout = { ch: 128, mult: [1, 2, 4, 4], nres: 2, z: 4 };
/** The golden tiny VAE (factor 2). */
export const TINY_VAE: VaeLayout = { ch: 32, mult: [1, 2], nres: 1, z: 4 };

export type VaeTower = 'encoder' | 'decoder' | 'denoise_encoder';

/**
 * Every `first_stage_model.*` key and shape: the towers asked for (SUPIR's denoise_encoder is a
 * second Encoder), plus quant_conv / post_quant_conv when the encoder / decoder is asked for.
 * Attention q/k/v/proj_out are 1x1 convolutions, as sgm stores them.
 */
export function officialVaeKeys(cfg: VaeLayout, towers: readonly VaeTower[] = ['encoder', 'decoder', 'denoise_encoder']): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const add = (k: string, w: number[]): void => void (keys.set(`${k}.weight`, w), keys.set(`${k}.bias`, [w[0]!]));
  const res = (q: string, ci: number, co: number): void => {
    add(`${q}.norm1`, [ci]), add(`${q}.conv1`, [co, ci, 3, 3]), add(`${q}.norm2`, [co]), add(`${q}.conv2`, [co, co, 3, 3]);
    if (ci !== co) add(`${q}.nin_shortcut`, [co, ci, 1, 1]);
  };
  const mid = (q: string, c: number): void => {
    res(`${q}.block_1`, c, c);
    add(`${q}.attn_1.norm`, [c]);
    for (const p of ['q', 'k', 'v', 'proj_out']) add(`${q}.attn_1.${p}`, [c, c, 1, 1]);
    res(`${q}.block_2`, c, c);
  };
  const encoder = (q: string): void => {
    add(`${q}.conv_in`, [cfg.ch, 3, 3, 3]);
    let c = cfg.ch;
    cfg.mult.forEach((m, i) => {
      for (let j = 0; j < cfg.nres; j++, c = cfg.ch * m) res(`${q}.down.${i}.block.${j}`, c, cfg.ch * m);
      if (i < cfg.mult.length - 1) add(`${q}.down.${i}.downsample.conv`, [c, c, 3, 3]);
    });
    mid(`${q}.mid`, c);
    add(`${q}.norm_out`, [c]), add(`${q}.conv_out`, [2 * cfg.z, c, 3, 3]);
  };
  const root = 'first_stage_model';
  for (const tower of towers) {
    if (tower !== 'decoder') {
      encoder(`${root}.${tower}`);
      if (tower === 'encoder') add(`${root}.quant_conv`, [2 * cfg.z, 2 * cfg.z, 1, 1]);
      continue;
    }
    const q = `${root}.decoder`;
    let c = cfg.ch * cfg.mult.at(-1)!;
    add(`${q}.conv_in`, [c, cfg.z, 3, 3]);
    mid(`${q}.mid`, c);
    for (let i = cfg.mult.length - 1; i >= 0; i--) {
      for (let j = 0; j <= cfg.nres; j++, c = cfg.ch * cfg.mult[i]!) res(`${q}.up.${i}.block.${j}`, c, cfg.ch * cfg.mult[i]!);
      if (i > 0) add(`${q}.up.${i}.upsample.conv`, [c, c, 3, 3]);
    }
    add(`${q}.norm_out`, [c]), add(`${q}.conv_out`, [3, c, 3, 3]);
    add(`${root}.post_quant_conv`, [cfg.z, cfg.z, 1, 1]);
  }
  return keys;
}

/** A CLIP text tower: width, layers, MLP width, vocabulary, context; bigG also its projection. */
export interface TextLayout {
  width: number;
  layers: number;
  mlp: number;
  vocab: number;
  context: number;
  /** bigG's text_projection output width. */
  pooled?: number;
}

export const CLIP_L: TextLayout = { width: 768, layers: 12, mlp: 3072, vocab: 49408, context: 77 };
export const BIGG: TextLayout = { width: 1280, layers: 32, mlp: 5120, vocab: 49408, context: 77, pooled: 1280 };
/** The golden tiny towers (text_tiny_config.json). */
export const TINY_CLIP_L: TextLayout = { width: 64, layers: 4, mlp: 256, vocab: 49408, context: 77 };
export const TINY_BIGG: TextLayout = { width: 64, layers: 4, mlp: 256, vocab: 49408, context: 77, pooled: 32 };

/**
 * SDXL's FrozenCLIPEmbedder (HF CLIPTextModel under `conditioner.embedders.0.transformer`): every
 * float parameter. The int64 `embeddings.position_ids` buffer is left out: checkpoints have it or
 * not (merge.ts RECOMPUTABLE_KEYS) and the graphs build it themselves.
 */
export function officialClipLKeys(cfg: TextLayout): Map<string, number[]> {
  const p = 'conditioner.embedders.0.transformer.text_model';
  const keys = new Map<string, number[]>();
  const add = (k: string, w: number[]): void => void (keys.set(`${k}.weight`, w), keys.set(`${k}.bias`, [w[0]!]));
  keys.set(`${p}.embeddings.token_embedding.weight`, [cfg.vocab, cfg.width]);
  keys.set(`${p}.embeddings.position_embedding.weight`, [cfg.context, cfg.width]);
  for (let i = 0; i < cfg.layers; i++) {
    const q = `${p}.encoder.layers.${i}`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) add(`${q}.self_attn.${proj}`, [cfg.width, cfg.width]);
    add(`${q}.layer_norm1`, [cfg.width]), add(`${q}.mlp.fc1`, [cfg.mlp, cfg.width]), add(`${q}.mlp.fc2`, [cfg.width, cfg.mlp]), add(`${q}.layer_norm2`, [cfg.width]);
  }
  add(`${p}.final_layer_norm`, [cfg.width]);
  return keys;
}

/** SDXL's FrozenOpenCLIPEmbedder2 (OpenCLIP's text tower under `conditioner.embedders.1.model`). */
export function officialBigGKeys(cfg: TextLayout): Map<string, number[]> {
  const p = 'conditioner.embedders.1.model';
  const keys = new Map<string, number[]>();
  const add = (k: string, w: number[]): void => void (keys.set(`${k}.weight`, w), keys.set(`${k}.bias`, [w[0]!]));
  keys.set(`${p}.positional_embedding`, [cfg.context, cfg.width]);
  keys.set(`${p}.text_projection`, [cfg.width, cfg.pooled ?? cfg.width]);
  keys.set(`${p}.logit_scale`, []);
  for (let i = 0; i < cfg.layers; i++) {
    const q = `${p}.transformer.resblocks.${i}`;
    add(`${q}.ln_1`, [cfg.width]);
    keys.set(`${q}.attn.in_proj_weight`, [3 * cfg.width, cfg.width]);
    keys.set(`${q}.attn.in_proj_bias`, [3 * cfg.width]);
    add(`${q}.attn.out_proj`, [cfg.width, cfg.width]), add(`${q}.ln_2`, [cfg.width]);
    add(`${q}.mlp.c_fc`, [cfg.mlp, cfg.width]), add(`${q}.mlp.c_proj`, [cfg.width, cfg.mlp]);
  }
  keys.set(`${p}.token_embedding.weight`, [cfg.vocab, cfg.width]);
  add(`${p}.ln_final`, [cfg.width]);
  return keys;
}

/** The geometry of a whole SUPIR model: denoiser, VAE and both text towers. */
export interface SupirLayout {
  unet: UnetConfig;
  vae: VaeLayout;
  clipL: TextLayout;
  bigG: TextLayout;
}

/** The real model: SUPIR-v0Q/v0F over SDXL 1.0 base. */
export const SUPIR_FULL: SupirLayout = { unet: SDXL, vae: SDXL_VAE, clipL: CLIP_L, bigG: BIGG };

/**
 * Every float key and shape of the SUPIR + SDXL checkpoint pair (merged view): denoiser and
 * GLVControl, the VAE with its denoise_encoder, both text towers.
 */
export function officialCheckpointKeys(layout: SupirLayout): Map<string, number[]> {
  return new Map([
    ...officialKeys(layout.unet, 'unet'),
    ...officialKeys(layout.unet, 'control'),
    ...officialVaeKeys(layout.vae),
    ...officialClipLKeys(layout.clipL),
    ...officialBigGKeys(layout.bigG),
  ]);
}
