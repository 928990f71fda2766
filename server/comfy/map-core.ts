/**
 * ComfyUI core nodes and the helper nodes of common packs (KJNodes, essentials, rgthree), mapped
 * onto SUPIR Studio's nodes. Pass-throughs (reroutes, virtual wires) and primitives are resolved
 * first, so that every other mapper sees real sources and constant values.
 */
import type { ComfyNode } from './graph.ts';
import type { ImportContext, Scalar } from './build.ts';

export type Mapper = (n: ComfyNode, ctx: ImportContext) => void;

const CONSTANT_KINDS = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO', 'NUMBER']);

/** Phase 1: nodes that only forward a value or hold one. */
export const PASS_THROUGHS: Record<string, Mapper> = {
  Reroute(n, ctx) {
    const src = n.links.values().next().value;
    ctx.target(n.id, 0, src ? { alias: src } : { none: 'an unconnected reroute' });
    ctx.absorbed.add(n.id);
    ctx.report.mapped(ctx.label(n), 'wires joined (reroutes are drawing aids here)');
  },
  SetNode(n, ctx) {
    const src = n.links.values().next().value;
    ctx.target(n.id, 0, src ? { alias: src } : { none: 'an unconnected Set node' });
    ctx.absorbed.add(n.id);
    ctx.report.mapped(ctx.label(n), `virtual wire "${String(ctx.widgets(n).values.Constant ?? '')}" drawn as a real link`);
  },
  GetNode(n, ctx) {
    const name = ctx.widgets(n).values.Constant;
    const setter = [...ctx.graph.nodes.values()].find((s) => s.type === 'SetNode' && ctx.widgets(s).values.Constant === name);
    const src = setter?.links.values().next().value;
    ctx.target(n.id, 0, src ? { alias: src } : { none: `no Set node named ${JSON.stringify(name)}` });
    ctx.absorbed.add(n.id);
    ctx.report.mapped(ctx.label(n), `virtual wire "${String(name ?? '')}" drawn as a real link`);
  },
  PrimitiveNode: constant,
  PrimitiveInt: constant,
  PrimitiveFloat: constant,
  PrimitiveString: constant,
  PrimitiveStringMultiline: constant,
  PrimitiveBoolean: constant,
};

/** A primitive's value goes into the widgets it drives (translated there like any widget value). */
function constant(n: ComfyNode, ctx: ImportContext): void {
  const value = ctx.widgets(n).values.value;
  const type = n.outputs[0]?.type ?? '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    ctx.target(n.id, 0, { constant: value });
    ctx.absorbed.add(n.id);
    ctx.report.mapped(ctx.label(n), `value ${JSON.stringify(value).slice(0, 60)} written into the widgets it drives`);
  } else if (!CONSTANT_KINDS.has(type)) ctx.target(n.id, 0, { none: 'a primitive without a value' });
}

/** `sd\\4x-UltraSharp.pth` → `4x-UltraSharp.pth`: ComfyUI lists models with their subfolder, in the OS's spelling. */
export const baseName = (file: string): string => file.split(/[\\/]/).pop() ?? file;

const RESIZE_METHODS: Record<string, string> = { 'nearest-exact': 'nearest', nearest: 'nearest', bilinear: 'bilinear', area: 'area', bicubic: 'bicubic', lanczos: 'lanczos', bislerp: 'bicubic' };

function resizeMethod(n: ComfyNode, ctx: ImportContext, name: string): string {
  const method = ctx.value(n, name, 'lanczos');
  const ours = RESIZE_METHODS[method];
  if (!ours) {
    ctx.report.unsupported(ctx.label(n), `${name} "${method}" has no equivalent; lanczos used`);
    return 'lanczos';
  }
  if (ours !== method) ctx.report.translated(ctx.label(n), `${name} "${method}" → ${ours}`);
  return ours;
}

function linkImage(n: ComfyNode, comfyInput: string, ours: { inputs: Map<string, unknown> }, input: string): void {
  const ref = n.links.get(comfyInput);
  if (ref) (ours.inputs as Map<string, { ref: typeof ref }>).set(input, { ref });
}

/** Phase 2: core and helper nodes with an equivalent. */
export const CORE_MAPPERS: Record<string, Mapper> = {
  LoadImage(n, ctx) {
    const image = ctx.value(n, 'image', '');
    ctx.add({ key: n.id, origin: n.id, type: 'LoadImage', ...(n.title ? { title: n.title } : {}), widgets: { image: baseName(image) } });
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.target(n.id, 1, { none: 'Load Image gives no MASK here (alpha is dropped)' });
    const read = ctx.widgets(n);
    ctx.report.mapped(ctx.label(n), `Load Image "${baseName(image)}"${read.uiOnly.length ? ` (skipped ${read.uiOnly.join(', ')})` : ''}`);
    if (baseName(image) !== image) ctx.report.translated(ctx.label(n), `image "${image}" → "${baseName(image)}" (our inputs folder)`);
  },
  SaveImage(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'SaveImage', widgets: { filename_prefix: ctx.value(n, 'filename_prefix', 'ComfyUI') } });
    linkImage(n, 'images', made, 'image');
    ctx.report.mapped(ctx.label(n), 'Save Image (PNG)');
  },
  PreviewImage(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'PreviewImage' });
    linkImage(n, 'images', made, 'image');
    ctx.report.mapped(ctx.label(n), 'Preview Image');
  },
  ImageScale(n, ctx) {
    let width = ctx.value(n, 'width', 512);
    let height = ctx.value(n, 'height', 512);
    if (width === 0 || height === 0) {
      ctx.report.unsupported(ctx.label(n), `a side of 0 (keep the proportions) has no equivalent: Resize Image fits within ${width || 16384}x${height || 16384} instead`);
      width ||= 16384;
      height ||= 16384;
    }
    const crop = ctx.value(n, 'crop', 'disabled');
    if (crop !== 'disabled') ctx.report.unsupported(ctx.label(n), `crop "${crop}" has no equivalent: the image is stretched to the size`);
    const mode = width === 16384 || height === 16384 ? 'fit' : 'size';
    const made = ctx.add({ key: n.id, origin: n.id, type: 'ImageResize', widgets: { mode, width, height, method: resizeMethod(n, ctx, 'upscale_method') } });
    linkImage(n, 'image', made, 'image');
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.report.mapped(ctx.label(n), `Resize Image (${mode} ${width}x${height})`);
  },
  ImageScaleBy(n, ctx) {
    const scale = ctx.value(n, 'scale_by', 1);
    const made = ctx.add({ key: n.id, origin: n.id, type: 'ImageResize', widgets: { mode: 'scale', scale, method: resizeMethod(n, ctx, 'upscale_method') } });
    linkImage(n, 'image', made, 'image');
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.report.mapped(ctx.label(n), `Resize Image (scale ${scale})`);
  },
  'ImageResize+'(n, ctx) {
    const width = ctx.value(n, 'width', 512);
    const height = ctx.value(n, 'height', 512);
    // Older essentials had a keep_proportion switch where "method" is now.
    const keep = ctx.widgets(n).values.keep_proportion;
    const method = typeof keep === 'boolean' ? (keep ? 'keep proportion' : 'stretch') : ctx.value(n, 'method', 'stretch');
    const condition = ctx.value(n, 'condition', 'always');
    const multiple = ctx.value(n, 'multiple_of', 0);
    const mode = method === 'keep proportion' || width === 0 || height === 0 ? 'fit' : 'size';
    if (method !== 'keep proportion' && method !== 'stretch') ctx.report.unsupported(ctx.label(n), `method "${method}" (pad/crop) has no equivalent: the image is stretched to the size`);
    if (condition !== 'always') ctx.report.unsupported(ctx.label(n), `condition "${condition}" has no equivalent: the image is always resized`);
    if (multiple > 1) ctx.report.unsupported(ctx.label(n), `multiple_of ${multiple} has no equivalent here (the SUPIR nodes round sizes themselves)`);
    const made = ctx.add({ key: n.id, origin: n.id, type: 'ImageResize', widgets: { mode, width: width || 16384, height: height || 16384, method: resizeMethod(n, ctx, 'interpolation') } });
    linkImage(n, 'image', made, 'image');
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.target(n.id, 1, { none: 'the width output of ImageResize+ has no equivalent' });
    ctx.target(n.id, 2, { none: 'the height output of ImageResize+ has no equivalent' });
    ctx.report.mapped(ctx.label(n), `Resize Image (${mode === 'fit' ? 'fit within' : 'size'} ${width}x${height})`);
    if (mode === 'fit') ctx.report.translated(ctx.label(n), `"${method}" → mode fit (keeps the proportions within ${width || '∞'}x${height || '∞'})`);
  },
  UpscaleModelLoader(n, ctx) {
    const file = ctx.value(n, 'model_name', '');
    const models = ctx.options.upscaleModels ?? [];
    let name = baseName(file);
    if (!models.includes(name) && !models.includes(file)) {
      const scale = /(?:^|[^\d])(\d)x|x(\d)(?:[^\d]|$)/i.exec(name);
      const factor = scale ? (scale[1] ?? scale[2]) : '4';
      const pick = models.find((m) => m === `esrgan-medium x${factor}`) ?? models.find((m) => m.endsWith(`x${factor}`)) ?? models[0];
      if (pick) {
        ctx.report.translated(ctx.label(n), `model "${file}" is not here (PyTorch .pth/.safetensors upscalers do not load; ONNX files in data/models do): "${pick}", the same scale, used instead`);
        name = pick;
      } else ctx.report.unsupported(ctx.label(n), `model "${file}" is not here`);
    } else if (name !== file) ctx.report.translated(ctx.label(n), `model_name "${file}" → "${name}"`);
    ctx.add({ key: n.id, origin: n.id, type: 'LoadUpscaleModel', widgets: { model_name: name } });
    ctx.target(n.id, 0, { our: n.id, output: 'model' });
    ctx.report.mapped(ctx.label(n), `Load Upscale Model "${name}"`);
  },
  ImageUpscaleWithModel(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'UpscaleImage' });
    linkImage(n, 'upscale_model', made, 'model');
    linkImage(n, 'image', made, 'image');
    ctx.target(n.id, 0, { our: n.id, output: 'image' });
    ctx.report.mapped(ctx.label(n), 'Restore Image (model), tiled with a smooth blend');
  },
  'Image Comparer (rgthree)'(n, ctx) {
    const made = ctx.add({ key: n.id, origin: n.id, type: 'CompareImages', widgets: { label_a: 'A', label_b: 'B' } });
    linkImage(n, 'image_a', made, 'image_a');
    linkImage(n, 'image_b', made, 'image_b');
    ctx.report.mapped(ctx.label(n), 'Compare Images (A/B slider)');
    if (n.positional?.length || Object.keys(n.named).length) ctx.report.translated(ctx.label(n), 'its saved preview images are not kept (they are shown after a run)');
  },
  ColorMatch(n, ctx) {
    colourFix(n, ctx, 'image_target', 'image_ref', String(ctx.value(n, 'method', 'mkl')), ctx.value(n, 'strength', 1), 'KJNodes ColorMatch');
  },
  ColorTransfer(n, ctx) {
    const source = ctx.value(n, 'source_stats', 'per_frame');
    if (source !== 'per_frame') ctx.report.unsupported(ctx.label(n), `source_stats "${source}" has no equivalent: every image is matched on its own`);
    colourFix(n, ctx, 'image_target', 'image_ref', String(ctx.value(n, 'method', 'reinhard_lab')), ctx.value(n, 'strength', 1), 'ColorTransfer');
  },
};

/**
 * Colour matching (KJNodes ColorMatch, core ColorTransfer) → SUPIR Colour Fix. The statistical
 * methods (mkl, reinhard, mvgd, histogram, in RGB or Lab) all move the target's colour
 * distribution onto the reference's; AdaIN (per-channel mean and spread) is the closest here.
 * Colour Fix needs a reference of the image's size, which ComfyUI's nodes do not: a Resize Image
 * to the target's size is put before the reference.
 */
function colourFix(n: ComfyNode, ctx: ImportContext, target: string, ref: string, method: string, strength: Scalar, what: string): void {
  const made = ctx.add({ key: n.id, origin: n.id, type: 'ColourFix', widgets: { method: 'AdaIN' } });
  linkImage(n, target, made, 'image');
  const refLink = n.links.get(ref);
  const targetLink = n.links.get(target);
  if (refLink && targetLink) {
    const resize = ctx.add({ key: `${n.id}/size`, origin: n.id, type: 'ImageResize', title: 'Reference to the image size', widgets: { mode: 'size', method: 'bicubic' } });
    resize.inputs.set('image', { ref: refLink });
    resize.inputs.set('size_of', { ref: targetLink });
    made.inputs.set('reference', { our: resize.key, output: 'image' });
    ctx.report.translated(ctx.label(n), 'the reference is resized to the image\'s size first (Colour Fix compares them pixel by pixel)');
  } else linkImage(n, ref, made, 'reference');
  ctx.target(n.id, 0, { our: n.id, output: 'image' });
  ctx.report.mapped(ctx.label(n), `SUPIR Colour Fix (${what})`);
  ctx.report.translated(ctx.label(n), `method "${method}" → AdaIN (matches each channel's mean and spread, the closest here)`);
  if (typeof strength === 'number' && strength !== 1) ctx.report.unsupported(ctx.label(n), `strength ${strength} has no equivalent: the full correction is applied`);
}
