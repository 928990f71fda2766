/**
 * kijai's ComfyUI-SUPIR (v1.0.3, nodes_v2.py: model loader, first stage, encode, conditioner,
 * sample, decode, tiles; nodes.py: the one-node SUPIR_Upscale) onto SUPIR Studio's SUPIR nodes.
 * kijai's graph passes the stage-1 latent through the conditioner and samples around the
 * encoded latent; ours links the stage-1 latent to SUPIR Sample's control and the encoded latent
 * to its x_center.
 */
import { DPMPP_GUIDED, DPMPP_OFFICIAL } from '../../nodes/supir/lib/sampler-run.ts';
import type { ComfyNode } from './graph.ts';
import type { ImportContext, Scalar, Source } from './build.ts';
import { baseName, type Mapper } from './map-core.ts';
import { CHECKPOINT_LOADERS, checkpointOf, dtypeNote, makeLoader, needModel, packName, sampleNode, snapTo32, vaeTile } from './supir-common.ts';

const KIJAI_SAMPLERS = new Set(['RestoreEDMSampler', 'RestoreDPMPP2MSampler', 'TiledRestoreEDMSampler', 'TiledRestoreDPMPP2MSampler']);

export const KIJAI_MAPPERS: Record<string, Mapper> = {
  SUPIR_model_loader_v2(n, ctx) {
    makeLoader(n, ctx, ctx.value(n, 'supir_model', ''), checkpointOf(n, ctx, ['model', 'vae']));
  },
  SUPIR_model_loader_v2_clip(n, ctx) {
    makeLoader(n, ctx, ctx.value(n, 'supir_model', ''), checkpointOf(n, ctx, ['model', 'vae']));
    for (const input of ['clip_l', 'clip_g']) {
      const clip = ctx.upstream(n, input);
      if (!clip || !CHECKPOINT_LOADERS.has(clip.type) || ctx.absorbed.has(clip.id)) continue;
      ctx.absorbed.add(clip.id);
      ctx.report.mapped(ctx.label(clip), `${input}: the pack's own text encoder is used (converted from the SDXL base)`);
    }
  },
  SUPIR_model_loader(n, ctx) {
    makeLoader(n, ctx, ctx.value(n, 'supir_model', ''), undefined, ctx.value(n, 'sdxl_model', '') || undefined);
  },
  SUPIR_first_stage(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirStage1', widgets: { tile_size: vaeTile(n, ctx, 'encoder_tile_size') } });
    needModel(n, ctx, made, 'SUPIR_VAE');
    const image = snapTo32(n, ctx, 'image');
    if (image) made.inputs.set('image', image);
    const sv = n.links.get('SUPIR_VAE');
    ctx.target(n.id, 0, sv ? { alias: sv } : { none: 'no SUPIR_VAE' });
    ctx.target(n.id, 1, { our: n.id, output: 'image' });
    ctx.target(n.id, 2, { our: n.id, output: 'control' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Stage-1 Denoise (denoised_image → image, denoised_latents → control)');
    const enc = ctx.value(n, 'encoder_tile_size', 512);
    const dec = ctx.value(n, 'decoder_tile_size', 512);
    if (ctx.value(n, 'use_tiled_vae', true) && enc !== dec) ctx.report.translated(ctx.label(n), `one tile size for both VAE passes here: encoder_tile_size ${enc} px used, decoder_tile_size ${dec} px not`);
    ctx.report.translated(ctx.label(n), 'SUPIR_VAE output: the same Load SUPIR Model (one model pack holds the VAE)');
    dtypeNote(n, ctx, 'encoder_dtype');
  },
  SUPIR_encode(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirEncode', widgets: { tile_size: vaeTile(n, ctx, 'encoder_tile_size') } });
    needModel(n, ctx, made, 'SUPIR_VAE');
    const image = n.links.get('image');
    if (image) made.inputs.set('image', { ref: image });
    ctx.target(n.id, 0, { our: n.id, output: 'latent' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Encode (its latent is the restoration target x_center of SUPIR Sample)');
    dtypeNote(n, ctx, 'encoder_dtype');
  },
  SUPIR_decode(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SupirDecode', widgets: { clamp: false, tile_size: vaeTile(n, ctx, 'decoder_tile_size') } });
    needModel(n, ctx, made, 'SUPIR_VAE');
    const latent = n.links.get('latents');
    if (latent) made.inputs.set('latent', { ref: latent });
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Decode');
    dtypeNote(n, ctx, 'decoder_dtype');
  },
  SUPIR_conditioner(n, ctx) {
    const made = ctx.add({
      key: n.id,
      origin: n.id,
      type: 'TextEncodeSDXL',
      widgets: { caption: '', a_prompt: ctx.value(n, 'positive_prompt', 'high quality, detailed'), n_prompt: ctx.value(n, 'negative_prompt', 'bad quality, blurry, messy'), separator: 'none' },
    });
    needModel(n, ctx, made, 'SUPIR_model');
    const captions = n.links.get('captions');
    if (captions) {
      made.inputs.set('caption', { ref: captions });
      ctx.report.translated(ctx.label(n), 'captions → caption (joined before positive_prompt without a separator, as ComfyUI-SUPIR does); per-tile caption lists go to tile_captions on our node');
    }
    ctx.target(n.id, 0, { our: n.id, output: 'positive' });
    ctx.target(n.id, 1, { our: n.id, output: 'negative' });
    ctx.report.mapped(ctx.label(n), 'SUPIR Text Encode (positive_prompt → a_prompt, negative_prompt → n_prompt)');
    ctx.report.translated(ctx.label(n), 'latents input: the stage-1 latent is linked to SUPIR Sample\'s control instead (our Text Encode does not need it)');
  },
  SUPIR_sample(n, ctx) {
    const sampler = ctx.value(n, 'sampler', 'RestoreEDMSampler');
    if (!KIJAI_SAMPLERS.has(sampler)) ctx.report.unsupported(ctx.label(n), `sampler "${sampler}" is unknown: RestoreEDM used`);
    const dpm = sampler.includes('DPMPP');
    const tiled = sampler.startsWith('Tiled');
    const cStart = ctx.value(n, 'control_scale_start', 1);
    const cEnd = ctx.value(n, 'control_scale_end', 1);
    const ramp = cStart !== cEnd;
    const cfgStart = ctx.value(n, 'cfg_scale_start', 4);
    const cfgEnd = ctx.value(n, 'cfg_scale_end', 4);
    const restore = ctx.value(n, 'restore_cfg', -1);
    const tilePx = ctx.value(n, 'sampler_tile_size', 1024);
    const stridePx = ctx.value(n, 'sampler_tile_stride', 512);
    const ours = dpm ? (ramp ? DPMPP_GUIDED : DPMPP_OFFICIAL) : 'RestoreEDM';
    const made = sampleNode(n, ctx, n.id, {
      sampler: ours,
      steps: ctx.value(n, 'steps', 45),
      seed: ctx.value(n, 'seed', 123),
      cfg_scale: cfgEnd,
      cfg_scale_start: cfgStart,
      linear_cfg: cfgStart !== cfgEnd,
      control_scale: cEnd,
      control_scale_start: cStart,
      linear_control_scale: ramp,
      restoration_scale: dpm ? -1 : restore <= 0 ? -1 : restore,
      s_churn: dpm ? 0 : ctx.value(n, 'EDM_s_churn', 5),
      s_noise: ctx.value(n, 's_noise', 1.003),
      tile_size: tiled ? Math.round(tilePx / 8) : 0,
      tile_stride: tiled ? Math.max(1, Math.round(stridePx / 8)) : 64,
    });
    needModel(n, ctx, made, 'SUPIR_model');
    for (const [from, to] of [['positive', 'positive'], ['negative', 'negative']] as const) {
      const ref = n.links.get(from);
      if (ref) made.inputs.set(to, { ref });
    }
    // The conditioner's latents (stage 1) are what GLVControl sees; the sampled latents are x_center.
    const cond = ctx.upstream(n, 'positive');
    const control = cond?.links.get('latents');
    if (control) made.inputs.set('control', { ref: control });
    else ctx.report.unsupported(ctx.label(n), 'no stage-1 latent found through the conditioner: link SUPIR Stage-1\'s control to SUPIR Sample');
    const center = n.links.get('latents');
    if (center) made.inputs.set('x_center', { ref: center });
    ctx.target(n.id, 0, { our: n.id, output: 'latent' });
    const lbl = ctx.label(n);
    ctx.report.mapped(lbl, `SUPIR Sample (${ours}${tiled ? ', tiled' : ''})`);
    ctx.report.translated(lbl, `sampler ${sampler} → ${ours}${dpm && ramp ? ' (ComfyUI-SUPIR\'s DPM++ applies the control ramp; our official DPM++ does not, this variant does)' : ''}`);
    ctx.report.translated(lbl, `cfg_scale_start ${cfgStart} → cfg_scale_start, cfg_scale_end ${cfgEnd} → cfg_scale${cfgStart !== cfgEnd ? ' (linear_cfg on)' : ''}; control_scale_start ${cStart} / control_scale_end ${cEnd} → control_scale_start / control_scale${ramp ? ' (linear_control_scale on)' : ''}`);
    if (tiled) ctx.report.translated(lbl, `sampler_tile_size ${tilePx} px → tile_size ${Math.round(tilePx / 8)} latent cells, sampler_tile_stride ${stridePx} px → tile_stride ${Math.round(stridePx / 8)} cells`);
    if (dpm && restore > 0) ctx.report.translated(lbl, `restore_cfg ${restore} is not used: ComfyUI-SUPIR turns it off for DPM++ samplers, and so does the import`);
    if (dpm) ctx.report.translated(lbl, 'EDM_s_churn is not used by DPM++ (as in ComfyUI-SUPIR)');
    const eta = ctx.value(n, 'DPMPP_eta', 1);
    if (dpm && eta !== 1) ctx.report.unsupported(lbl, `DPMPP_eta ${eta} has no equivalent: our DPM++ uses eta 1 (the SDE form)`);
    if (ctx.value(n, 'keep_model_loaded', false)) ctx.report.unsupported(lbl, 'keep_model_loaded has no equivalent: the runtime keeps models open under its memory budget');
    const read = ctx.widgets(n);
    if (read.uiOnly.length) ctx.report.translated(lbl, `skipped ${read.uiOnly.join(', ')} (a front-end setting, not a node input)`);
  },
  SUPIR_tiles(n, ctx) {
    const size = ctx.value(n, 'tile_size', 512);
    const stride = ctx.value(n, 'tile_stride', 256);
    const made = ctx.add({ key: n.id, origin: n.id, type: 'TileImage', widgets: { tile_size: size, overlap: Math.max(0, size - stride) } });
    const image = n.links.get('image');
    if (image) made.inputs.set('image', { ref: image });
    ctx.target(n.id, 0, { our: n.id, output: 'tiles' });
    ctx.target(n.id, 1, { constant: size });
    ctx.target(n.id, 2, { constant: stride });
    ctx.report.mapped(ctx.label(n), 'Tile Image (a preview of the tiles)');
    ctx.report.translated(ctx.label(n), `tile_stride ${stride} px → overlap ${Math.max(0, size - stride)} px; the tile_size and tile_stride outputs become values in the widgets they drive`);
  },
  SUPIR_Upscale(n, ctx) {
    legacyUpscale(n, ctx);
  },
};

/**
 * kijai's one-node SUPIR_Upscale (nodes.py) as the graph it runs: Load SUPIR Model → SUPIR Resize
 * (scale_by, multiples of 32) → Stage-1 → Encode → Text Encode → Sample → Decode → Colour Fix.
 */
function legacyUpscale(n: ComfyNode, ctx: ImportContext): void {
  const lbl = ctx.label(n);
  const supir = ctx.value(n, 'supir_model', '');
  const sdxl = ctx.value(n, 'sdxl_model', '');
  const pack = packName(supir, sdxl || undefined);
  const key = (k: string): string => `${n.id}/${k}`;
  ctx.add({ key: key('model'), origin: n.id, type: 'LoadSupirModel', title: `Load SUPIR Model (${pack})`, widgets: { pack, provider: 'auto' } });
  const command = `npx supir-studio convert --supir ${baseName(supir)} --sdxl ${baseName(sdxl)} --out data/models/${pack}`;
  if (!ctx.report.convert.includes(command)) ctx.report.convert.push(command);
  const model: Source = { our: key('model'), output: 'model' };
  const scale = ctx.value(n, 'scale_by', 1);
  const resize = ctx.add({ key: key('resize'), origin: n.id, type: 'SupirResize', widgets: { upscale: Math.min(16, Math.max(0.1, scale)), min_size: 64, multiple: 32 } });
  const image = n.links.get('image');
  if (image) resize.inputs.set('image', { ref: image });
  const encTile = ctx.value(n, 'use_tiled_vae', true) ? ctx.value(n, 'encoder_tile_size_pixels', 512) : 0;
  const decTile = ctx.value(n, 'use_tiled_vae', true) ? ctx.value(n, 'decoder_tile_size_latent', 64) * 8 : 0;
  const stage1 = ctx.add({ key: key('stage1'), origin: n.id, type: 'SupirStage1', widgets: { tile_size: encTile } });
  stage1.inputs.set('model', model).set('image', { our: resize.key, output: 'image' });
  const encode = ctx.add({ key: key('encode'), origin: n.id, type: 'SupirEncode', widgets: { tile_size: encTile } });
  encode.inputs.set('model', model).set('image', { our: stage1.key, output: 'image' });
  const text = ctx.add({ key: key('text'), origin: n.id, type: 'TextEncodeSDXL', widgets: { caption: '', a_prompt: ctx.value(n, 'a_prompt', 'high quality, detailed'), n_prompt: ctx.value(n, 'n_prompt', 'bad quality, blurry, messy'), separator: 'none' } });
  text.inputs.set('model', model);
  const captions = n.links.get('captions');
  if (captions) text.inputs.set('caption', { ref: captions });
  const sampler = ctx.value(n, 'sampler', 'RestoreEDMSampler');
  const dpm = sampler.includes('DPMPP');
  const tiled = ctx.value(n, 'use_tiled_sampling', false);
  const cfg = ctx.value(n, 'cfg_scale', 4);
  const cfgStart = ctx.value(n, 'cfg_scale_start', 4);
  const control = ctx.value(n, 'control_scale', 1);
  const controlStart = ctx.value(n, 'control_scale_start', 0);
  const restore = ctx.value(n, 'restoration_scale', -1);
  const sample = sampleNode(n, ctx, key('sample'), {
    sampler: dpm ? DPMPP_OFFICIAL : 'RestoreEDM',
    steps: ctx.value(n, 'steps', 45),
    seed: ctx.value(n, 'seed', 123),
    cfg_scale: cfg,
    cfg_scale_start: cfgStart,
    linear_cfg: cfg !== cfgStart,
    control_scale: control,
    control_scale_start: controlStart,
    linear_control_scale: control !== controlStart && !dpm,
    restoration_scale: restore <= 0 ? -1 : restore,
    s_churn: dpm ? 0 : ctx.value(n, 's_churn', 5),
    s_noise: ctx.value(n, 's_noise', 1.003),
    tile_size: tiled ? Math.round(ctx.value(n, 'sampler_tile_size', 1024) / 8) : 0,
    tile_stride: tiled ? Math.round(ctx.value(n, 'sampler_tile_stride', 512) / 8) : 64,
  });
  sample.inputs.set('model', model).set('positive', { our: text.key, output: 'positive' }).set('negative', { our: text.key, output: 'negative' }).set('control', { our: stage1.key, output: 'control' }).set('x_center', { our: encode.key, output: 'latent' });
  const decode = ctx.add({ key: key('decode'), origin: n.id, type: 'SupirDecode', widgets: { clamp: false, tile_size: decTile } });
  decode.inputs.set('model', model).set('latent', { our: sample.key, output: 'latent' });
  const fixType = ctx.value(n, 'color_fix_type', 'Wavelet');
  const fix = ctx.add({ key: n.id, origin: n.id, type: 'ColourFix', widgets: { method: fixType === 'AdaIn' ? 'AdaIN' : fixType === 'None' ? 'None' : 'Wavelet' } });
  fix.inputs.set('image', { our: decode.key, output: 'image' }).set('reference', { our: stage1.key, output: 'image' });
  ctx.target(n.id, 0, { our: n.id, output: 'image' });
  ctx.report.mapped(lbl, `expanded into the graph it runs: Load SUPIR Model (pack "${pack}") → SUPIR Resize → Stage-1 → Encode → Text Encode → Sample → Decode → Colour Fix; make the pack with: ${command}`);
  ctx.report.translated(lbl, `scale_by ${scale} with resize_method "${ctx.value(n, 'resize_method', 'lanczos')}" → SUPIR Resize (Pillow bicubic, sides to multiples of 32); decoder_tile_size_latent ${decTile / 8 || '-'} cells → ${decTile} px`);
  if (tiled) ctx.report.translated(lbl, 'sampler_tile_size / sampler_tile_stride in pixels → latent cells (÷8)');
  for (const [name, dflt] of [['batch_size', 1], ['fp8_unet', false], ['fp8_vae', false]] as const) {
    const v = ctx.value(n, name, dflt as Scalar);
    if (v !== dflt) ctx.report.unsupported(lbl, `${name} ${String(v)} has no equivalent`);
  }
  for (const name of ['diffusion_dtype', 'encoder_dtype']) if (ctx.value(n, name, 'auto') !== 'auto') ctx.report.unsupported(lbl, `${name} ${ctx.value(n, name, 'auto')} has no equivalent: the pack's precision is used`);
}
