/**
 * SUPIR Studio workflow → ComfyUI API prompt, for the nodes that have an equivalent, so that a
 * graph built here can be queued on a ComfyUI server. SUPIR goes to kijai's ComfyUI-SUPIR v2
 * nodes (one node each, the same settings: EDM churn, both ramps, tiles); the rest to core nodes,
 * ColorTransfer for the colour fix and rgthree's Image Comparer for Compare Images. Muted nodes
 * are left out and bypassed ones joined, as when we run the graph. The report says what changed.
 */
import { withPreset } from '../../nodes/supir/lib/sampler-presets.ts';
import { DPMPP_GUIDED, DPMPP_OFFICIAL } from '../../nodes/supir/lib/sampler-run.ts';
import type { NodeRegistry } from '../engine/registry.ts';
import { workflowToPrompt } from '../engine/workflow.ts';
import { isLink, type ApiPrompt, type InputValue } from '../protocol/prompt.ts';
import type { Workflow } from '../protocol/workflow-schema.ts';
import type { Widen } from './build.ts';
import { ReportBuilder, type ComfyReport } from './report.ts';

type ComfyInput = string | number | boolean | [string, number];
export type ComfyApiPrompt = Record<string, { class_type: string; inputs: Record<string, ComfyInput>; _meta?: { title: string } }>;

const RESIZE_BACK: Record<string, string> = { nearest: 'nearest-exact', bilinear: 'bilinear', bicubic: 'bicubic', area: 'area', lanczos: 'lanczos' };

export function exportComfy(wf: Workflow, registry: NodeRegistry): { prompt: ComfyApiPrompt; report: ComfyReport } {
  const ours: ApiPrompt = workflowToPrompt(wf, registry);
  const report = new ReportBuilder('SUPIR Studio workflow → ComfyUI API prompt');
  const out: ComfyApiPrompt = {};
  const numeric = Object.keys(ours).filter((k) => /^\d+$/.test(k)).map(Number);
  let next = Math.max(0, ...numeric) + 1;
  /** Where each of our outputs is in ComfyUI: node id and output index. */
  const outputs = new Map<string, [string, number]>();
  const extraIds = new Map<string, string>();
  const loaderOf = new Map<string, { model: [string, number]; vae: [string, number] }>();
  const label = (id: string): string => `#${id} ${ours[id]!.class_type}`;
  const link = (v: InputValue | undefined): [string, number] | undefined => {
    if (!isLink(v)) return undefined;
    const def = registry.get(ours[v[0]]?.class_type ?? '');
    const name = def ? Object.keys(def.outputs)[v[1]] : undefined;
    return outputs.get(`${v[0]}:${name}`);
  };
  const lit = <T extends string | number | boolean>(v: InputValue | undefined, fallback: T): Widen<T> => (v !== undefined && !isLink(v) && typeof v === typeof fallback ? v : fallback) as Widen<T>;
  const setOut = (id: string, name: string, at: [string, number]): void => void outputs.set(`${id}:${name}`, at);

  // Nodes in dependency order, so that every link finds its source already placed.
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id) || !ours[id]) return;
    seen.add(id);
    for (const v of Object.values(ours[id]!.inputs)) if (isLink(v)) visit(v[0]);
    order.push(id);
  };
  Object.keys(ours).forEach(visit);

  // Text Encode needs the control latent of the sampler it feeds (kijai's conditioner takes it).
  const controlFor = new Map<string, InputValue>();
  for (const n of Object.values(ours)) {
    if (n.class_type !== 'SupirSample') continue;
    for (const input of ['positive', 'negative'] as const) {
      const v = n.inputs[input];
      if (isLink(v) && n.inputs.control !== undefined) controlFor.set(v[0], n.inputs.control);
    }
  }

  for (const id of order) {
    const n = ours[id]!;
    const i = n.inputs;
    const put = (cls: string, inputs: Record<string, ComfyInput | undefined>, key = id): void => {
      out[key] = { class_type: cls, inputs: Object.fromEntries(Object.entries(inputs).filter((e): e is [string, ComfyInput] => e[1] !== undefined)), ...(n._meta?.title ? { _meta: { title: n._meta.title } } : {}) };
    };
    switch (n.class_type) {
      case 'LoadImage':
        put('LoadImage', { image: lit(i.image, '') });
        setOut(id, 'image', [id, 0]);
        report.mapped(label(id), 'LoadImage (put the file in ComfyUI\'s input folder)');
        break;
      case 'SaveImage':
        put('SaveImage', { images: link(i.image), filename_prefix: lit(i.filename_prefix, 'supir') });
        if (lit(i.format, 'png') !== 'png') report.translated(label(id), `format ${String(i.format)} → PNG (ComfyUI's SaveImage writes PNG)`);
        report.mapped(label(id), 'SaveImage');
        break;
      case 'PreviewImage':
        put('PreviewImage', { images: link(i.image) });
        report.mapped(label(id), 'PreviewImage');
        break;
      case 'ImageResize': {
        const method = RESIZE_BACK[lit(i.method, 'lanczos')] ?? 'lanczos';
        const mode = lit(i.mode, 'scale');
        if (i.size_of !== undefined) report.unsupported(label(id), 'size_of has no ComfyUI equivalent: width and height are used');
        if (mode === 'scale') put('ImageScaleBy', { image: link(i.image), upscale_method: method, scale_by: lit(i.scale, 2) });
        else if (mode === 'size') put('ImageScale', { image: link(i.image), upscale_method: method, width: lit(i.width, 1024), height: lit(i.height, 1024), crop: 'disabled' });
        else {
          put('ImageResize+', { image: link(i.image), width: lit(i.width, 1024), height: lit(i.height, 1024), interpolation: method, method: 'keep proportion', condition: 'always', multiple_of: 0 });
          report.translated(label(id), 'mode fit → ComfyUI_essentials\' ImageResize+ (keep proportion)');
        }
        setOut(id, 'image', [id, 0]);
        report.mapped(label(id), mode === 'scale' ? 'ImageScaleBy' : mode === 'size' ? 'ImageScale' : 'ImageResize+');
        break;
      }
      case 'LoadUpscaleModel':
        put('UpscaleModelLoader', { model_name: lit(i.model_name, '') });
        setOut(id, 'model', [id, 0]);
        report.translated(label(id), `model_name "${String(i.model_name)}": ComfyUI loads upscalers from models/upscale_models (.pth/.safetensors); pick the same model there`);
        break;
      case 'UpscaleImage':
        put('ImageUpscaleWithModel', { upscale_model: link(i.model), image: link(i.image) });
        setOut(id, 'image', [id, 0]);
        report.mapped(label(id), 'ImageUpscaleWithModel (ComfyUI chooses its own tiles)');
        break;
      case 'LoadSupirModel': {
        const pack = lit(i.pack, 'SUPIR-v0Q');
        const variant = /v0([QF])/i.exec(pack)?.[1]?.toUpperCase() ?? 'Q';
        const base = /^SUPIR-v0[QF]-(.+)$/i.exec(pack)?.[1];
        const ckptId = String(next++);
        extraIds.set(ckptId, id);
        put('CheckpointLoaderSimple', { ckpt_name: base ? `${base}.safetensors` : 'sd_xl_base_1.0_0.9vae.safetensors' }, ckptId);
        put('SUPIR_model_loader_v2', { model: [ckptId, 0], clip: [ckptId, 1], vae: [ckptId, 2], supir_model: `SUPIR-v0${variant}.ckpt`, fp8_unet: false, diffusion_dtype: 'auto', high_vram: false });
        loaderOf.set(id, { model: [id, 0], vae: [id, 1] });
        report.mapped(label(id), `CheckpointLoaderSimple #${ckptId} + SUPIR_model_loader_v2 (ComfyUI-SUPIR): pack "${pack}" → SUPIR-v0${variant}.ckpt on ${base ? `${base}.safetensors` : 'the SDXL 1.0 base'}`);
        break;
      }
      case 'SupirResize': {
        put('ImageScaleBy', { image: link(i.image), upscale_method: 'bicubic', scale_by: lit(i.upscale, 1) });
        setOut(id, 'image', [id, 0]);
        report.translated(label(id), `SUPIR Resize → ImageScaleBy ${String(i.upscale)} (ComfyUI-SUPIR snaps to multiples of 32 itself; min_size ${String(i.min_size)} is not exported)`);
        break;
      }
      case 'SupirStage1': {
        const m = modelOf(i.model);
        const tile = lit(i.tile_size, -1);
        put('SUPIR_first_stage', { SUPIR_VAE: m?.vae, image: link(i.image), use_tiled_vae: tile !== 0, encoder_tile_size: tile > 0 ? tile : 512, decoder_tile_size: tile > 0 ? tile : 512, encoder_dtype: 'auto' });
        setOut(id, 'image', [id, 1]);
        setOut(id, 'control', [id, 2]);
        report.mapped(label(id), 'SUPIR_first_stage');
        break;
      }
      case 'SupirEncode': {
        const tile = lit(i.tile_size, -1);
        put('SUPIR_encode', { SUPIR_VAE: modelOf(i.model)?.vae, image: link(i.image), use_tiled_vae: tile !== 0, encoder_tile_size: tile > 0 ? tile : 512, encoder_dtype: 'auto' });
        setOut(id, 'latent', [id, 0]);
        report.mapped(label(id), 'SUPIR_encode');
        break;
      }
      case 'SupirDecode': {
        const tile = lit(i.tile_size, -1);
        put('SUPIR_decode', { SUPIR_VAE: modelOf(i.model)?.vae, latents: link(i.latent), use_tiled_vae: tile !== 0, decoder_tile_size: tile > 0 ? tile : 512 });
        setOut(id, 'image', [id, 0]);
        report.mapped(label(id), 'SUPIR_decode');
        break;
      }
      case 'TextEncodeSDXL': {
        const sep = { none: '', space: ' ', comma: ', ' }[lit(i.separator, 'none')] ?? '';
        const caption = lit(i.caption, '');
        put('SUPIR_conditioner', {
          SUPIR_model: modelOf(i.model)?.model,
          latents: link(controlFor.get(id)),
          positive_prompt: caption ? `${caption}${sep}${lit(i.a_prompt, '')}` : lit(i.a_prompt, ''),
          negative_prompt: lit(i.n_prompt, ''),
          captions: link(i.caption),
        });
        setOut(id, 'positive', [id, 0]);
        setOut(id, 'negative', [id, 1]);
        report.mapped(label(id), 'SUPIR_conditioner (caption + a_prompt → positive_prompt)');
        if (i.tile_captions !== undefined) report.unsupported(label(id), 'tile_captions has no equivalent in ComfyUI-SUPIR');
        break;
      }
      case 'SupirSample': {
        const s = withPreset(
          {
            sampler: lit(i.sampler, 'RestoreEDM'),
            steps: lit(i.steps, 50),
            cfg_scale: lit(i.cfg_scale, 4),
            cfg_scale_start: lit(i.cfg_scale_start, 1),
            linear_cfg: lit(i.linear_cfg, true),
            control_scale: lit(i.control_scale, 1),
            control_scale_start: lit(i.control_scale_start, 0),
            linear_control_scale: lit(i.linear_control_scale, false),
            restoration_scale: lit(i.restoration_scale, -1),
            s_churn: lit(i.s_churn, 5),
            s_noise: lit(i.s_noise, 1.003),
          },
          lit(i.preset, 'custom'),
        );
        const tile = lit(i.tile_size, 0);
        const dpm = s.sampler !== 'RestoreEDM';
        const ramp = s.linear_control_scale && s.sampler !== DPMPP_OFFICIAL;
        put('SUPIR_sample', {
          SUPIR_model: modelOf(i.model)?.model,
          latents: link(i.x_center ?? i.control),
          positive: link(i.positive),
          negative: link(i.negative),
          seed: lit(i.seed, 1234),
          steps: Math.max(3, s.steps),
          cfg_scale_start: s.linear_cfg ? s.cfg_scale_start : s.cfg_scale,
          cfg_scale_end: s.cfg_scale,
          EDM_s_churn: Math.min(40, Math.round(s.s_churn)),
          s_noise: Math.min(1.1, Math.max(1, s.s_noise)),
          DPMPP_eta: 1,
          control_scale_start: ramp ? s.control_scale_start : s.control_scale,
          control_scale_end: s.control_scale,
          restore_cfg: s.restoration_scale,
          keep_model_loaded: false,
          sampler: `${tile > 0 ? 'Tiled' : ''}${dpm ? 'RestoreDPMPP2MSampler' : 'RestoreEDMSampler'}`,
          sampler_tile_size: tile > 0 ? tile * 8 : 1024,
          sampler_tile_stride: tile > 0 ? lit(i.tile_stride, 64) * 8 : 512,
        });
        setOut(id, 'latent', [id, 0]);
        report.mapped(label(id), 'SUPIR_sample');
        if (tile > 0) report.translated(label(id), `tile_size ${tile} / tile_stride ${String(i.tile_stride)} latent cells → ${tile * 8} / ${lit(i.tile_stride, 64) * 8} px`);
        if (s.sampler === DPMPP_GUIDED && s.restoration_scale > 0) report.unsupported(label(id), `restoration_scale ${s.restoration_scale}: ComfyUI-SUPIR turns restore_cfg off for DPM++`);
        if (s.steps < 3) report.unsupported(label(id), `steps ${s.steps}: ComfyUI-SUPIR takes at least 3`);
        if (i.x_center === undefined) report.translated(label(id), 'x_center unlinked: the control latent goes to latents');
        break;
      }
      case 'ColourFix':
        put('ColorTransfer', { image_target: link(i.image), image_ref: link(i.reference), method: 'reinhard_lab', source_stats: 'per_frame', strength: lit(i.method, 'Wavelet') === 'None' ? 0 : 1 });
        setOut(id, 'image', [id, 0]);
        report.translated(label(id), `method ${String(i.method)} → ColorTransfer reinhard_lab (mean and spread in Lab; ComfyUI has no wavelet colour fix)`);
        break;
      case 'CompareImages':
        put('Image Comparer (rgthree)', { image_a: link(i.image_a), image_b: link(i.image_b) });
        report.mapped(label(id), 'Image Comparer (rgthree)');
        break;
      case 'PrimitiveInt':
      case 'PrimitiveSeed':
        put('PrimitiveInt', { value: lit(i.value ?? i.seed, 0) });
        setOut(id, n.class_type === 'PrimitiveSeed' ? 'seed' : 'value', [id, 0]);
        report.mapped(label(id), 'PrimitiveInt');
        break;
      case 'PrimitiveFloat':
        put('PrimitiveFloat', { value: lit(i.value, 0) });
        setOut(id, 'value', [id, 0]);
        report.mapped(label(id), 'PrimitiveFloat');
        break;
      case 'PrimitiveText':
        put('PrimitiveStringMultiline', { value: lit(i.value, '') });
        setOut(id, 'value', [id, 0]);
        report.mapped(label(id), 'PrimitiveStringMultiline');
        break;
      default:
        report.unsupported(label(id), 'no ComfyUI equivalent: left out (and the inputs it fed)');
    }
  }
  // Drop links to nodes that were left out, saying so.
  for (const [id, node] of Object.entries(out)) {
    for (const [name, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && !out[v[0]]) {
        delete node.inputs[name];
        report.unsupported(`#${extraIds.get(id) ?? id} ${node.class_type}`, `input ${name}: its source was left out`);
      }
    }
  }
  return { prompt: out, report: report.build() };

  function modelOf(v: InputValue | undefined): { model: [string, number]; vae: [string, number] } | undefined {
    return isLink(v) ? loaderOf.get(v[0]) : undefined;
  }
}
