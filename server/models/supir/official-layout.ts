/**
 * Every parameter key and shape the official constructors create (sgm UNetModel, GLVControl,
 * LightGLVUNet 'XL-base'), transcribed from the SUPIR code. It lets tests check the architecture
 * derivation on the real geometry without the real weights, and lets benchmarks build the
 * full-size network with random weights. test/supir/unet-arch.test.ts checks it against the tiny
 * golden file (same keys and shapes) and the published parameter counts.
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

