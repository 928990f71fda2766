/**
 * What the SUPIR mappers share (map-kijai.ts, map-native.ts): ComfyUI needs an SDXL base next to
 * the SUPIR weights; here the two are one model pack, so a checkpoint loader and a SUPIR loader
 * become one Load SUPIR Model whose pack is named after both files, and the report gives the
 * command that makes it. Also the SUPIR Sample node with its ranges, and the sides-to-32 resize.
 */
import type { SamplerSettings } from '../../nodes/supir/lib/sampler-run.ts';
import { DEFAULT_SUPIR_PACK } from '../../nodes/supir/load-model.ts';
import type { ComfyNode, Ref } from './graph.ts';
import type { ImportContext, OurNode, Scalar, Source } from './build.ts';
import { baseName } from './map-core.ts';

export const SUPIR_LOADERS = new Set(['SUPIR_model_loader_v2', 'SUPIR_model_loader_v2_clip', 'SUPIR_model_loader', 'ModelPatchLoader']);
export const CHECKPOINT_LOADERS = new Set(['CheckpointLoaderSimple', 'CheckpointLoader', 'VAELoader', 'CLIPLoader', 'DualCLIPLoader', 'UNETLoader']);
/** The restoration guidance of SUPIR and ComfyUI stops below this sigma; ours too. */
export const RESTORE_S_TMIN = 0.05;

const stem = (file: string): string => baseName(file).replace(/\.(safetensors|ckpt|pt|pth|bin|sft)$/i, '');
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 80);

/** "SUPIR-v0F_fp16.safetensors" + "juggernautXL_v9Rdphoto2Lightning.safetensors" → "SUPIR-v0F-juggernautXL_v9Rdphoto2Lightning"; SDXL 1.0 base → "SUPIR-v0Q". */
export function packName(supirFile: string, sdxlFile: string | undefined): string {
  const variant = /v0([QF])/i.exec(supirFile)?.[1]?.toUpperCase();
  const head = variant ? `SUPIR-v0${variant}` : safe(stem(supirFile)) || DEFAULT_SUPIR_PACK;
  if (!sdxlFile || /^sd_xl_base_1\.0/i.test(baseName(sdxlFile))) return head;
  return `${head}-${safe(stem(sdxlFile))}`;
}

/** The ComfyUI checkpoint feeding a node's model/clip/vae inputs (through pass-throughs). */
export function checkpointOf(n: ComfyNode, ctx: ImportContext, inputs: string[]): ComfyNode | undefined {
  for (const input of inputs) {
    const up = ctx.upstream(n, input);
    if (up && CHECKPOINT_LOADERS.has(up.type)) return up;
  }
  return undefined;
}

export function makeLoader(n: ComfyNode, ctx: ImportContext, supirFile: string, ckpt: ComfyNode | undefined, sdxlFile?: string): void {
  const sdxl = sdxlFile ?? (ckpt ? ctx.value(ckpt, 'ckpt_name', '') || undefined : undefined);
  const pack = packName(supirFile, sdxl);
  ctx.add({ key: n.id, origin: n.id, type: 'LoadSupirModel', title: `Load SUPIR Model (${pack})`, widgets: { pack, provider: 'auto' } });
  for (let slot = 0; slot < 2; slot++) ctx.target(n.id, slot, { our: n.id, output: 'model' });
  const command = `npx supir-studio convert --supir ${baseName(supirFile) || 'SUPIR-v0Q_fp16.safetensors'} --sdxl ${sdxl ? baseName(sdxl) : 'sd_xl_base_1.0_0.9vae.safetensors'} --out data/models/${pack}`;
  if (!ctx.report.convert.includes(command)) ctx.report.convert.push(command);
  ctx.report.mapped(ctx.label(n), `Load SUPIR Model, pack "${pack}" (SUPIR weights "${baseName(supirFile)}"${sdxl ? ` + SDXL base "${baseName(sdxl)}"` : ''}); make it with: ${command}`);
  if (ckpt) {
    ctx.absorbed.add(ckpt.id);
    for (let slot = 0; slot < 3; slot++) ctx.target(ckpt.id, slot, { our: n.id, output: 'model' });
    ctx.report.mapped(ctx.label(ckpt), `the SDXL base "${baseName(sdxl ?? '')}" is part of model pack "${pack}" (Load SUPIR Model #${n.id}): SUPIR Studio runs SDXL from the pack`);
  }
  if (ctx.value(n, 'fp8_unet', false)) ctx.report.unsupported(ctx.label(n), 'fp8_unet has no equivalent: packs are fp32 or fp16 (convert --precision fp16 halves the size)');
  const dtype = ctx.value(n, 'diffusion_dtype', 'auto');
  if (dtype !== 'auto') ctx.report.translated(ctx.label(n), `diffusion_dtype ${dtype}: the precision is the pack's (convert --precision ${dtype === 'fp32' ? 'fp32' : 'fp16'})`);
  if (ctx.value(n, 'high_vram', false)) ctx.report.unsupported(ctx.label(n), 'high_vram has no equivalent: the runtime keeps models under its memory budget');
}

/** Our SUPIR model behind a ComfyUI SUPIR_model / SUPIR_VAE / MODEL / VAE input. */
export function supirModel(ref: Ref | undefined, ctx: ImportContext, depth = 0): Source | undefined {
  const real = ctx.follow(ref);
  const n = real ? ctx.node(real.node) : undefined;
  if (!n || depth > 16) return undefined;
  if (SUPIR_LOADERS.has(n.type) || n.type === 'SUPIR_Upscale') return { our: n.type === 'SUPIR_Upscale' ? `${n.id}/model` : n.id, output: 'model' };
  if (n.type === 'SUPIR_first_stage') return supirModel(n.links.get('SUPIR_VAE'), ctx, depth + 1);
  if (n.type === 'SUPIRApply') return supirModel(n.links.get('model_patch'), ctx, depth + 1);
  if (CHECKPOINT_LOADERS.has(n.type)) {
    const t = ctx.resolve(real!);
    if ('our' in t) return t;
    const loaders = [...ctx.graph.nodes.values()].filter((x) => SUPIR_LOADERS.has(x.type));
    if (loaders.length === 1) return { our: loaders[0]!.id, output: 'model' };
  }
  return undefined;
}

export function needModel(n: ComfyNode, ctx: ImportContext, made: OurNode, input: string): void {
  const model = supirModel(n.links.get(input), ctx);
  if (model) made.inputs.set('model', model);
  else ctx.report.unsupported(ctx.label(n), `${input}: no SUPIR model loader upstream; link a Load SUPIR Model`);
}

/** kijai's VAE tiling (use_tiled_vae + a tile size in pixels) → our tile_size (0 = whole). */
export function vaeTile(n: ComfyNode, ctx: ImportContext, sizeName: string, fallback = 512): number {
  if (!ctx.value(n, 'use_tiled_vae', true)) return 0;
  return ctx.value(n, sizeName, fallback);
}

export function dtypeNote(n: ComfyNode, ctx: ImportContext, name: string): void {
  const v = ctx.value(n, name, 'auto');
  if (v !== 'auto') ctx.report.unsupported(ctx.label(n), `${name} ${v} has no equivalent: the VAE runs in float32 (fp16 gives NaN in SUPIR's VAE)`);
}

/**
 * kijai's first stage snaps both sides down to a multiple of 32 before encoding (bicubic); our
 * Stage-1 takes what it is given, so a SUPIR Resize to a multiple of 32 goes before it.
 */
export function snapTo32(n: ComfyNode, ctx: ImportContext, imageInput: string): Source | undefined {
  const ref = n.links.get(imageInput);
  if (!ref) return undefined;
  const resize = ctx.add({ key: `${n.id}/resize`, origin: n.id, type: 'SupirResize', title: 'Sides to multiples of 32', widgets: { upscale: 1, min_size: 64, multiple: 32 } });
  resize.inputs.set('image', { ref });
  ctx.report.translated(ctx.label(n), 'the image is snapped to multiples of 32 px first, as ComfyUI does inside the node (a SUPIR Resize was added; it rounds to the nearest multiple, bicubic)');
  return { our: resize.key, output: 'image' };
}

export interface SamplerValues extends SamplerSettings {
  sampler: string;
  seed: number;
  tile_size: number;
  tile_stride: number;
}

/** Our SUPIR Sample limits: values past them are clamped and said. */
const LIMITS: Partial<Record<keyof SamplerValues, [number, number]>> = { steps: [1, 500], cfg_scale: [0, 30], cfg_scale_start: [0, 30], control_scale: [0, 2], control_scale_start: [0, 2], restoration_scale: [-1, 20], s_churn: [0, 100], s_noise: [0, 2] };

export function sampleNode(n: ComfyNode, ctx: ImportContext, key: string, v: SamplerValues): OurNode {
  const widgets: Record<string, Scalar> = { preset: 'custom' };
  for (const [name, value] of Object.entries(v) as Array<[keyof SamplerValues, Scalar]>) {
    const limit = LIMITS[name];
    if (limit && typeof value === 'number' && (value < limit[0] || value > limit[1])) {
      const clamped = Math.min(limit[1], Math.max(limit[0], value));
      ctx.report.unsupported(ctx.label(n), `${name} ${value} is beyond SUPIR Sample's range [${limit[0]}, ${limit[1]}]: ${clamped} used`);
      widgets[name] = clamped;
    } else widgets[name] = value;
  }
  return ctx.add({ key, origin: n.id, type: 'SupirSample', widgets });
}
