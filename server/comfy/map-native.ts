/**
 * ComfyUI's native SUPIR (comfy_extras/nodes_model_patch.py): ModelPatchLoader + SUPIRApply
 * patching an SDXL model that KSampler or SamplerCustom sample, with CLIPTextEncode prompts and
 * VAEDecode, onto SUPIR Studio's SUPIR nodes. SUPIRApply's hint latent (the denoise encoder's) is
 * our Stage-1 control; its restoration target (the hint decoded and encoded again) our SUPIR
 * Encode of the stage-1 image; its strength ramp and restore_cfg settings of SUPIR Sample.
 */
import { DPMPP_GUIDED } from '../../nodes/supir/lib/sampler-run.ts';
import type { ComfyNode } from './graph.ts';
import type { ImportContext } from './build.ts';
import type { Mapper } from './map-core.ts';
import { placeholderOf } from './placeholder.ts';
import { checkpointOf, makeLoader, needModel, RESTORE_S_TMIN, sampleNode, snapTo32, supirModel } from './supir-common.ts';

export const NATIVE_MAPPERS: Record<string, Mapper> = {
  ModelPatchLoader(n, ctx) {
    const name = ctx.value(n, 'name', '');
    if (!/supir/i.test(name)) {
      placeholderOf(n, ctx, `model patch "${name}" is not a SUPIR patch; only SUPIR patches have an equivalent here`);
      return;
    }
    const apply = [...ctx.graph.nodes.values()].find((a) => a.type === 'SUPIRApply' && ctx.follow(a.links.get('model_patch'))?.node === n.id);
    makeLoader(n, ctx, name, apply ? checkpointOf(apply, ctx, ['model', 'vae']) : undefined);
  },
  SUPIRApply(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirStage1', widgets: { tile_size: -1 } });
    needModel(n, ctx, made, 'model_patch');
    const image = snapTo32(n, ctx, 'image');
    if (image) made.inputs.set('image', image);
    ctx.report.mapped(ctx.label(n), 'SUPIR Stage-1 Denoise (the denoise encoder\'s latent is the control, as the patch\'s hint latent); its settings go to SUPIR Sample');
    const restore = ctx.value(n, 'restore_cfg', 4);
    if (restore > 0) {
      const enc = ctx.add({ key: `${n.id}/encode`, origin: n.id, type: 'SupirEncode', widgets: { tile_size: -1 } });
      if (made.inputs.has('model')) enc.inputs.set('model', made.inputs.get('model')!);
      enc.inputs.set('image', { our: n.id, output: 'image' });
      ctx.report.translated(ctx.label(n), `restore_cfg ${restore}: the restoration target (the hint decoded and encoded again) is a SUPIR Encode of the stage-1 image`);
    }
    ctx.target(n.id, 0, { none: 'the patched MODEL is used by KSampler / SamplerCustom only' });
  },
  KSampler(n, ctx) {
    nativeSampler(n, ctx, { seed: ctx.value(n, 'seed', 0), steps: ctx.value(n, 'steps', 20), cfg: ctx.value(n, 'cfg', 8), sampler: ctx.value(n, 'sampler_name', 'euler'), scheduler: ctx.value(n, 'scheduler', 'normal'), denoise: ctx.value(n, 'denoise', 1) });
  },
  SamplerCustom(n, ctx) {
    const select = ctx.upstream(n, 'sampler');
    const sigmas = ctx.upstream(n, 'sigmas');
    if (select) ctx.absorbed.add(select.id);
    let steps = 20;
    let scheduler = 'normal';
    let denoise = 1;
    if (sigmas?.type === 'BasicScheduler') {
      ctx.absorbed.add(sigmas.id);
      steps = ctx.value(sigmas, 'steps', 20);
      scheduler = ctx.value(sigmas, 'scheduler', 'normal');
      denoise = ctx.value(sigmas, 'denoise', 1);
      ctx.report.mapped(ctx.label(sigmas), `steps ${steps} and scheduler "${scheduler}" go to SUPIR Sample #${n.id}`);
    } else if (sigmas) ctx.report.unsupported(ctx.label(n), `sigmas from ${sigmas.type} have no equivalent: ${steps} steps of our schedule used`);
    if (select) ctx.report.mapped(ctx.label(select), `the sampler goes to SUPIR Sample #${n.id}`);
    if (!ctx.value(n, 'add_noise', true)) ctx.report.unsupported(ctx.label(n), 'add_noise off has no equivalent: SUPIR starts from noise');
    nativeSampler(n, ctx, { seed: ctx.value(n, 'noise_seed', 0), steps, cfg: ctx.value(n, 'cfg', 8), sampler: select ? ctx.value(select, 'sampler_name', 'euler') : 'euler', scheduler, denoise });
    ctx.target(n.id, 1, { our: n.id, output: 'latent' });
  },
  VAEDecode(n, ctx) {
    const model = supirModel(n.links.get('vae'), ctx);
    if (!model) return placeholderOf(n, ctx, 'a VAE that is not part of a SUPIR pipeline (SUPIR Studio decodes SDXL latents only inside a SUPIR pack)');
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirDecode', widgets: { clamp: false, tile_size: -1 } });
    made.inputs.set('model', model);
    const latent = n.links.get('samples');
    if (latent) made.inputs.set('latent', { ref: latent });
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Decode (the VAE of the model pack)');
  },
  VAEEncode(n, ctx) {
    const model = supirModel(n.links.get('vae'), ctx);
    if (!model) return placeholderOf(n, ctx, 'a VAE that is not part of a SUPIR pipeline');
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirEncode', widgets: { tile_size: -1 } });
    made.inputs.set('model', model);
    const pixels = n.links.get('pixels');
    if (pixels) made.inputs.set('image', { ref: pixels });
    ctx.target(n.id, 0, { our: n.id, output: 'latent' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Encode (the VAE of the model pack)');
  },
};

/** Nodes that other mappers take in (or not): handled after them. */
export const DEFERRED = new Set(['CheckpointLoaderSimple', 'CheckpointLoader', 'VAELoader', 'CLIPLoader', 'DualCLIPLoader', 'CLIPTextEncode', 'EmptyLatentImage', 'KSamplerSelect', 'BasicScheduler']);

const SAMPLER_NAMES: Record<string, { ours: string; churn?: number; note: string }> = {
  euler: { ours: 'RestoreEDM', churn: 0, note: 'Euler = RestoreEDM without churn' },
  dpmpp_2m: { ours: DPMPP_GUIDED, note: 'DPM++ 2M with the patch\'s control ramp and restoration guidance; ours is the SDE form (eta 1), ComfyUI\'s dpmpp_2m the ODE form' },
  dpmpp_2m_sde: { ours: DPMPP_GUIDED, note: 'DPM++ 2M SDE with the patch\'s control ramp and restoration guidance' },
  dpmpp_2m_sde_gpu: { ours: DPMPP_GUIDED, note: 'DPM++ 2M SDE with the patch\'s control ramp and restoration guidance' },
};

/** KSampler / SamplerCustom on a SUPIRApply-patched model → SUPIR Sample + SUPIR Text Encode. */
function nativeSampler(n: ComfyNode, ctx: ImportContext, s: { seed: number; steps: number; cfg: number; sampler: string; scheduler: string; denoise: number }): void {
  const apply = ctx.upstream(n, 'model');
  if (apply?.type !== 'SUPIRApply') {
    placeholderOf(n, ctx, `a plain ${apply?.type ?? 'SDXL'} model: SUPIR Studio samples only with SUPIR (ModelPatchLoader + SUPIRApply)`);
    return;
  }
  const lbl = ctx.label(n);
  const known = SAMPLER_NAMES[s.sampler];
  if (known) ctx.report.translated(lbl, `sampler_name "${s.sampler}" → ${known.ours} (${known.note})`);
  else ctx.report.unsupported(lbl, `sampler_name "${s.sampler}" has no equivalent: ${DPMPP_GUIDED} used`);
  if (s.scheduler !== 'karras') ctx.report.translated(lbl, `scheduler "${s.scheduler}" → our sampler's own schedule (SUPIR's: DDPM sigmas for RestoreEDM, Karras spacing for DPM++)`);
  if (s.denoise !== 1) ctx.report.unsupported(lbl, `denoise ${s.denoise} has no equivalent: SUPIR samples the whole schedule`);
  const start = ctx.value(apply, 'strength_start', 1);
  const end = ctx.value(apply, 'strength_end', 1);
  const restore = ctx.value(apply, 'restore_cfg', 4);
  const tmin = ctx.value(apply, 'restore_cfg_s_tmin', RESTORE_S_TMIN);
  if (tmin !== RESTORE_S_TMIN) ctx.report.unsupported(ctx.label(apply), `restore_cfg_s_tmin ${tmin} has no equivalent: guidance stops below sigma ${RESTORE_S_TMIN}`);
  const made = sampleNode(n, ctx, n.id, {
    sampler: known?.ours ?? DPMPP_GUIDED,
    steps: s.steps,
    seed: s.seed,
    cfg_scale: s.cfg,
    cfg_scale_start: s.cfg,
    linear_cfg: false,
    control_scale: end,
    control_scale_start: start,
    linear_control_scale: start !== end,
    restoration_scale: restore > 0 ? restore : -1,
    s_churn: known?.churn ?? 0,
    s_noise: 1,
    tile_size: 0,
    tile_stride: 64,
  });
  ctx.report.mapped(lbl, `SUPIR Sample (${made.widgets.sampler})`);
  ctx.report.translated(lbl, `SUPIRApply #${apply.id}: strength_start ${start} → control_scale_start, strength_end ${end} → control_scale${start !== end ? ' (linear_control_scale on)' : ''}, restore_cfg ${restore} → restoration_scale ${restore > 0 ? restore : -1}; cfg ${s.cfg} → cfg_scale (constant)`);
  const model = supirModel(apply.links.get('model_patch'), ctx);
  if (model) made.inputs.set('model', model);
  made.inputs.set('control', { our: apply.id, output: 'control' });
  if (restore > 0) made.inputs.set('x_center', { our: `${apply.id}/encode`, output: 'latent' });
  const latent = ctx.upstream(n, 'latent_image');
  if (latent) {
    ctx.absorbed.add(latent.id);
    ctx.report.mapped(ctx.label(latent), `the latent's size is the control latent's here (SUPIR Sample #${n.id} starts from noise of that size)`);
  }
  // Both prompts go into one SUPIR Text Encode.
  const pos = ctx.upstream(n, 'positive');
  const neg = ctx.upstream(n, 'negative');
  const text = ctx.add({ key: `${n.id}/text`, origin: pos?.id ?? n.id, type: 'TextEncodeSDXL', widgets: { caption: '', a_prompt: '', n_prompt: '', separator: 'none' } });
  if (model) text.inputs.set('model', model);
  for (const [cond, widget] of [[pos, 'a_prompt'], [neg, 'n_prompt']] as const) {
    if (!cond) continue;
    if (cond.type !== 'CLIPTextEncode') {
      ctx.report.unsupported(lbl, `${widget === 'a_prompt' ? 'positive' : 'negative'} conditioning from ${cond.type} has no equivalent: empty prompt used`);
      continue;
    }
    ctx.absorbed.add(cond.id);
    const linked = cond.links.get('text');
    const t = linked ? ctx.resolve(linked) : undefined;
    if (linked && t && !('constant' in t)) {
      text.inputs.set(widget === 'a_prompt' ? 'caption' : widget, { ref: linked });
      ctx.report.translated(ctx.label(cond), `its linked text goes to SUPIR Text Encode's ${widget === 'a_prompt' ? 'caption' : widget}`);
    } else text.widgets[widget] = ctx.value(cond, 'text', '');
    ctx.report.mapped(ctx.label(cond), `its text is SUPIR Text Encode's ${widget} (one node encodes both prompts, with SUPIR's fixed 1024 size embeddings)`);
  }
  made.inputs.set('positive', { our: text.key, output: 'positive' });
  made.inputs.set('negative', { our: text.key, output: 'negative' });
  ctx.target(n.id, 0, { our: n.id, output: 'latent' });
}
