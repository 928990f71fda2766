/**
 * The widget order of the ComfyUI nodes the importer maps, taken from each node's INPUT_TYPES
 * (required, then optional; inputs that are sockets or `forceInput` have no widget). A UI file
 * stores widget values by position, and the front end adds values that belong to no input: the
 * "control after generate" value after a seed (`[seed, "fixed", steps, ...]`) and the upload
 * button's value after Load Image's file. Reading positions without knowing that shifts every
 * later value by one (ComfyUI-SUPIR issue 203): here the extra values are recognised by what they
 * are, so files written with and without them both line up.
 */
import type { ComfyNode } from './graph.ts';

type Kind = 'int' | 'float' | 'number' | 'string' | 'bool' | 'any';
interface Widget {
  name: string;
  kind: Kind;
}

const w = (spec: string): Widget[] =>
  spec
    .split(/\s+/)
    .filter(Boolean)
    .map((s) => {
      const [name, kind] = s.split(':') as [string, Kind | undefined];
      return { name, kind: kind ?? 'any' };
    });

/** Widgets (name:kind) in the order ComfyUI writes their values. */
export const WIDGETS: Record<string, Widget[]> = {
  LoadImage: w('image:string'),
  SaveImage: w('filename_prefix:string'),
  PreviewImage: [],
  ImageScale: w('upscale_method:string width:int height:int crop:string'),
  ImageScaleBy: w('upscale_method:string scale_by:number'),
  ImageUpscaleWithModel: [],
  UpscaleModelLoader: w('model_name:string'),
  CheckpointLoaderSimple: w('ckpt_name:string'),
  PrimitiveNode: w('value'),
  PrimitiveInt: w('value:int'),
  PrimitiveFloat: w('value:number'),
  PrimitiveString: w('value:string'),
  PrimitiveStringMultiline: w('value:string'),
  PrimitiveBoolean: w('value:bool'),
  Reroute: [],
  SetNode: w('Constant:string'),
  GetNode: w('Constant:string'),
  SUPIR_model_loader_v2: w('supir_model:string fp8_unet:bool diffusion_dtype:string high_vram:bool'),
  SUPIR_model_loader_v2_clip: w('supir_model:string fp8_unet:bool diffusion_dtype:string high_vram:bool'),
  SUPIR_model_loader: w('supir_model:string sdxl_model:string fp8_unet:bool diffusion_dtype:string'),
  SUPIR_first_stage: w('use_tiled_vae:bool encoder_tile_size:int decoder_tile_size:int encoder_dtype:string'),
  SUPIR_encode: w('use_tiled_vae:bool encoder_tile_size:int encoder_dtype:string'),
  SUPIR_decode: w('use_tiled_vae:bool decoder_tile_size:int decoder_dtype:string'),
  // `captions` is a forceInput widget: front ends of 2024 still wrote a value for it.
  SUPIR_conditioner: w('positive_prompt:string negative_prompt:string captions:string'),
  SUPIR_sample: w(
    'seed:int steps:int cfg_scale_start:number cfg_scale_end:number EDM_s_churn:number s_noise:number DPMPP_eta:number control_scale_start:number control_scale_end:number restore_cfg:number keep_model_loaded:bool sampler:string sampler_tile_size:int sampler_tile_stride:int',
  ),
  SUPIR_tiles: w('tile_size:int tile_stride:int'),
  SUPIR_Upscale: w(
    'supir_model:string sdxl_model:string seed:int resize_method:string scale_by:number steps:int restoration_scale:number cfg_scale:number a_prompt:string n_prompt:string s_churn:number s_noise:number control_scale:number cfg_scale_start:number control_scale_start:number color_fix_type:string keep_model_loaded:bool use_tiled_vae:bool encoder_tile_size_pixels:int decoder_tile_size_latent:int diffusion_dtype:string encoder_dtype:string batch_size:int use_tiled_sampling:bool sampler_tile_size:int sampler_tile_stride:int fp8_unet:bool fp8_vae:bool sampler:string',
  ),
  ModelPatchLoader: w('name:string'),
  SUPIRApply: w('strength_start:number strength_end:number restore_cfg:number restore_cfg_s_tmin:number'),
  KSampler: w('seed:int steps:int cfg:number sampler_name:string scheduler:string denoise:number'),
  SamplerCustom: w('add_noise:bool noise_seed:int cfg:number'),
  KSamplerSelect: w('sampler_name:string'),
  BasicScheduler: w('scheduler:string steps:int denoise:number'),
  CLIPTextEncode: w('text:string'),
  EmptyLatentImage: w('width:int height:int batch_size:int'),
  VAEDecode: [],
  VAEEncode: [],
  ColorTransfer: w('method:string source_stats:string strength:number'),
  ColorMatch: w('method:string strength:number multithread:bool'),
  'ImageResize+': w('width:int height:int interpolation:string method:string condition:string multiple_of:int'),
  'Image Comparer (rgthree)': w('comparer'),
};

/**
 * Earlier widget layouts of the same node types, found in saved workflows: tried when the current
 * layout does not fit the values. Names are the current ones, so the mappers read one set.
 */
export const OLDER_WIDGETS: Record<string, Array<{ label: string; widgets: Widget[] }>> = {
  SUPIR_sample: [
    {
      label: 'ComfyUI-SUPIR v2 of March 2024 (no DPMPP_eta; s_churn)',
      widgets: w('seed:int steps:int cfg_scale_start:number cfg_scale_end:number EDM_s_churn:number s_noise:number control_scale_start:number control_scale_end:number restore_cfg:number keep_model_loaded:bool sampler:string sampler_tile_size:int sampler_tile_stride:int'),
    },
  ],
  'ImageResize+': [{ label: 'ComfyUI_essentials before "method" (keep_proportion on/off)', widgets: w('width:int height:int interpolation:string keep_proportion:bool condition:string multiple_of:int') }],
};

/** Widgets that the front end follows with a "control after generate" value. */
const SEED_WIDGETS = new Set(['seed', 'noise_seed']);
const CONTROL_VALUES = new Set(['fixed', 'increment', 'decrement', 'randomize']);

function fits(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'float':
    case 'number':
      return typeof v === 'number';
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'any':
      return true;
  }
}

export interface WidgetRead {
  values: Record<string, unknown>;
  /** Values the front end added that belong to no input (seed controls, the upload button). */
  uiOnly: string[];
  /** Set when the values do not line up with the widgets: what was seen. */
  misaligned?: string;
  /** Set when the values fit an earlier layout of the node (OLDER_WIDGETS): which. */
  layout?: string;
}

/**
 * The node's widget values by name: named values as they are; positional ones assigned in widget
 * order, skipping the extra values the front end inserts. When they do not fit the current
 * layout, earlier layouts of the node are tried. Unknown node types use the widget names the
 * file itself lists (`inputs[].widget`), where it does.
 */
export function readWidgets(node: ComfyNode): WidgetRead {
  const current = WIDGETS[node.type];
  const spec = current ?? node.widgetOrder?.map((name) => ({ name, kind: 'any' as Kind }));
  const list = node.positional ?? [];
  let read: WidgetRead = { values: {}, uiOnly: [] };
  if (spec && list.length > 0) {
    read = positional(node, spec, list, current !== undefined);
    for (const older of read.misaligned ? (OLDER_WIDGETS[node.type] ?? []) : []) {
      const alt = positional(node, older.widgets, list, true);
      if (!alt.misaligned) {
        read = { ...alt, layout: older.label };
        break;
      }
    }
  }
  // Named values (a PNG's prompt, object widgets_values, subgraph promotions) win over positions.
  Object.assign(read.values, node.named);
  return read;
}

function positional(node: ComfyNode, spec: Widget[], list: unknown[], strict: boolean): WidgetRead {
  const values: Record<string, unknown> = {};
  const uiOnly: string[] = [];
  let misaligned: string | undefined;
  let i = 0;
  for (const [w, widget] of spec.entries()) {
    if (i >= list.length) break;
    const value = list[i++];
    values[widget.name] = value;
    if (!fits(widget.kind, value)) misaligned ??= `${widget.name} got ${JSON.stringify(value)}`;
    const next = list[i];
    // Seeds always carry the control value; other integers (primitives) do in newer front ends,
    // seen by the list being longer than the widgets that are left.
    const control = typeof next === 'string' && CONTROL_VALUES.has(next);
    const intLike = typeof value === 'number' && Number.isInteger(value) && (widget.kind === 'int' || widget.kind === 'any');
    if (control && (SEED_WIDGETS.has(widget.name) || (intLike && list.length - i > spec.length - w - 1))) {
      uiOnly.push(`${widget.name} control after generate "${next}"`);
      i++;
    } else if (node.type === 'LoadImage' && widget.name === 'image' && next === 'image') {
      uiOnly.push('the upload button');
      i++;
    }
  }
  if (i < list.length && strict) misaligned ??= `${list.length - i} value(s) more than ${node.type} has widgets: ${JSON.stringify(list.slice(i)).slice(0, 120)}`;
  return { values, uiOnly, ...(misaligned ? { misaligned } : {}) };
}
