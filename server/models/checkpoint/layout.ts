/**
 * The key layouts the checkpoints people hold come in, brought to the one the compilers read: the
 * SGM ("original", single-file) layout of sd_xl_base_1.0 and the official SUPIR files. Each function
 * returns a view of the checkpoint under the SGM names (no tensor is copied or converted; a renamed
 * key reads the same bytes), or refuses a layout it cannot convert, saying what the file is.
 *
 * SUPIR file (supirView):
 * - SGM: `model.control_model.*`, `model.diffusion_model.project_modules.*`,
 *   `first_stage_model.denoise_encoder.*` — the official SUPIR-v0Q/v0F.ckpt and the pruned
 *   `SUPIR-v0Q_fp16.safetensors` / `SUPIR-v0F_fp16.safetensors` ComfyUI users download (Kijai/SUPIR_pruned):
 *   the same keys in F16. ComfyUI-SUPIR's loaders lay them over the SDXL model with
 *   `load_state_dict(strict=False)` (kijai/ComfyUI-SUPIR nodes_v2.py).
 * - ComfyUI's model-patch layout: `control_model.*` and `project_modules.*` without the `model.` /
 *   `model.diffusion_model.` prefixes, which ComfyUI's own ModelPatchLoader accepts beside the SGM one
 *   (Comfy-Org/ComfyUI comfy_extras/nodes_model_patch.py).
 * - `model.control_model.mask_LQ` (a [1, 4, 64, 64] training leftover that GLVControl never reads;
 *   ComfyUI drops it too) is left out.
 *
 * SDXL base (sdxlView): a single-file SDXL checkpoint in the SGM layout — sd_xl_base_1.0 and the
 * fine-tunes built on it (Juggernaut XL, its Lightning variants, anything ComfyUI's CheckpointSave
 * writes: ComfyUI reads SDXL single files only in this layout, comfy/supported_models.py
 * SDXL.process_clip_state_dict), in F32, F16 or BF16. Only the four parts SUPIR reads are kept
 * (`model.diffusion_model.*`, `first_stage_model.*`, `conditioner.embedders.0.transformer.*`,
 * `conditioner.embedders.1.model.*`, plus the recomputable `denoiser.*`); `model_ema.*` and other
 * extras are ignored. A baked-in VAE in the diffusers layout is renamed. Refused, naming what the
 * file is: diffusers-layout UNets, bare UNet files, SD 1.x/2.x, the SDXL refiner, v-prediction and
 * EDM (Playground v2.5) models, and text encoders in the transformers (`text_encoders.clip_l/g`) layout.
 *
 * A separate VAE file (vaeView): the SDXL VAE in the SGM layout with or without the
 * `first_stage_model.` prefix (sdxl_vae.safetensors, or a whole checkpoint), or in the diffusers
 * layout (`diffusion_pytorch_model.safetensors`), renamed as diffusers' own
 * convert_diffusers_to_original_stable_diffusion.py does (copied in Comfy-Org/ComfyUI comfy/diffusers_convert.py).
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { Checkpoint } from './checkpoint.ts';

/** The parts of SUPIR that only its own file holds, and what each is. */
export const SUPIR_PARTS = [
  { prefix: 'model.control_model.', what: 'GLVControl' },
  { prefix: 'model.diffusion_model.project_modules.', what: 'ZeroSFT connectors' },
  { prefix: 'first_stage_model.denoise_encoder.', what: 'denoise encoder' },
] as const;

/** The parts of SDXL that SUPIR reads from the base checkpoint. */
export const SDXL_PARTS = [
  { prefix: 'model.diffusion_model.', what: 'UNet' },
  { prefix: 'first_stage_model.', what: 'VAE' },
  { prefix: 'conditioner.embedders.0.transformer.', what: 'CLIP ViT-L text encoder' },
  { prefix: 'conditioner.embedders.1.model.', what: 'OpenCLIP ViT-bigG text encoder' },
] as const;

/** The SDXL VAE's own tensors (what a separate VAE file supplies; not SUPIR's denoise_encoder). */
export const VAE_TOWERS = ['first_stage_model.encoder.', 'first_stage_model.decoder.', 'first_stage_model.quant_conv.', 'first_stage_model.post_quant_conv.'];

/** Keys in SUPIR files that no SUPIR module reads. */
export const SUPIR_LEFTOVER_KEYS: ReadonlySet<string> = new Set(['model.control_model.mask_LQ']);

/** ComfyUI's model-patch names for SUPIR's weights → the SGM names. */
const COMFY_PATCH_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['control_model.', 'model.control_model.'],
  ['project_modules.', 'model.diffusion_model.project_modules.'],
];

/** Kept from the base beside SDXL_PARTS: the schedule buffer the model recomputes. */
const BASE_EXTRA_PREFIXES = ['denoiser.'];

export function isSupirPartKey(key: string): boolean {
  return SUPIR_PARTS.some((p) => key.startsWith(p.prefix));
}

/** A view of `ck` under other names: `names` maps each new key to the key it reads in `ck`. */
export function renameView(ck: Checkpoint, names: ReadonlyMap<string, string>): Checkpoint {
  const from = (key: string): string => {
    const k = names.get(key);
    if (k === undefined) throw new StudioError('NOT_FOUND', `${ck.path} has no tensor '${key}'`);
    return k;
  };
  return {
    path: ck.path,
    format: ck.format,
    keys: () => [...names.keys()],
    has: (key) => names.has(key),
    shape: (key) => ck.shape(from(key)),
    dtype: (key) => ck.dtype(from(key)),
    source: (key) => ck.source(from(key)),
    bytes: async (key) => ck.bytes(from(key)),
    float32: async (key) => ck.float32(from(key)),
    close: () => ck.close(),
  };
}

/** Adds `name → key` to `names`, refusing a file that holds the same tensor under two layouts. */
function add(ck: Checkpoint, names: Map<string, string>, name: string, key: string): void {
  const other = names.get(name);
  if (other !== undefined && other !== key) {
    throw new StudioError('BAD_INPUT', `${ck.path} holds '${name}' twice, as '${other}' and as '${key}': it mixes two key layouts`);
  }
  names.set(name, key);
}

/** Whether every key kept its name, so the checkpoint itself can stand for the view. */
function identity(ck: Checkpoint, names: ReadonlyMap<string, string>): boolean {
  return names.size === ck.keys().length && [...names].every(([n, k]) => n === k);
}

/** The SUPIR file under SGM names (the ComfyUI model-patch layout renamed, the unused mask_LQ left out). */
export function supirView(ck: Checkpoint): Checkpoint {
  const names = new Map<string, string>();
  for (const key of ck.keys()) {
    const p = COMFY_PATCH_PREFIXES.find(([from]) => key.startsWith(from));
    const name = p ? p[1] + key.slice(p[0].length) : key;
    if (!SUPIR_LEFTOVER_KEYS.has(name)) add(ck, names, name, key);
  }
  return identity(ck, names) ? ck : renameView(ck, names);
}

/** Whether the file holds SUPIR's own weights, in either layout. */
export function holdsSupirWeights(ck: Checkpoint): boolean {
  return ck.keys().some((k) => isSupirPartKey(k) || COMFY_PATCH_PREFIXES.some(([from]) => k.startsWith(from)));
}

const has = (keys: readonly string[], test: (k: string) => boolean): boolean => keys.some(test);
const SGM_UNET = 'model.diffusion_model.';

/**
 * Refuses a base that is not an SDXL single file in the SGM layout, saying what it is. Files with
 * SUPIR's weights are left to the caller (swapped files have their own message).
 */
function checkBaseLayout(ck: Checkpoint, keys: readonly string[]): void {
  const refuse = (what: string, hint: string): never => {
    throw new StudioError('BAD_INPUT', `${ck.path} (given as the SDXL base) is ${what}; ${hint}`);
  };
  const single = 'SUPIR needs a single-file SDXL checkpoint in the SGM layout (model.diffusion_model.*, first_stage_model.*, conditioner.embedders.*), as sd_xl_base_1.0 and the fine-tunes on Civitai and Hugging Face ship';
  const unet = has(keys, (k) => k.startsWith(SGM_UNET));
  if (!unet && has(keys, (k) => /^(unet\.|model\.)?(down_blocks|up_blocks|mid_block)\./.test(k) || /^(text_encoder|text_encoder_2|vae)\./.test(k))) {
    refuse('in the diffusers layout (down_blocks.*, mid_block.*: a diffusers folder\'s weights)', single);
  }
  if (!unet && has(keys, (k) => /^(input_blocks|middle_block|output_blocks)\./.test(k))) {
    refuse('a bare UNet (input_blocks.* without model.diffusion_model., as in ComfyUI\'s models/unet): it has no text encoders and no VAE', single);
  }
  if (has(keys, (k) => k.startsWith('cond_stage_model.'))) refuse('a Stable Diffusion 1.x/2.x checkpoint (cond_stage_model.*), not SDXL', single);
  if (has(keys, (k) => k.startsWith('conditioner.embedders.0.model.')) && !has(keys, (k) => k.startsWith('conditioner.embedders.1.'))) {
    refuse('the SDXL refiner (one OpenCLIP text encoder as conditioner.embedders.0), not an SDXL base model', 'SUPIR was trained on the SDXL base; use sd_xl_base_1.0 or a fine-tune of it');
  }
  if (has(keys, (k) => k.startsWith('text_encoders.clip_l.') || k.startsWith('text_encoders.clip_g.')) && !has(keys, (k) => k.startsWith('conditioner.'))) {
    refuse(
      'a checkpoint whose text encoders are in the transformers layout (text_encoders.clip_l.*, text_encoders.clip_g.*), which is not how SDXL single files store them',
      `${single}; ComfyUI's CheckpointSave writes that layout`,
    );
  }
  const vpred = ['v_pred', 'edm_vpred.sigma_max'].find((k) => keys.includes(k));
  if (vpred) refuse(`a v-prediction model (it holds '${vpred}')`, 'SUPIR and its samplers are built for the eps-prediction SDXL base and its fine-tunes');
  if (keys.includes('edm_mean') || keys.includes('edm_std')) refuse('an EDM-schedule model such as Playground v2.5 (it holds edm_mean/edm_std)', 'SUPIR and its samplers are built for the eps-prediction SDXL base and its fine-tunes');
}

/**
 * The SDXL base under SGM names: only the parts SUPIR reads, any SUPIR weights in it left out (they
 * must come from the SUPIR file), a diffusers-layout baked-in VAE renamed.
 */
export function sdxlView(ck: Checkpoint): Checkpoint {
  const keys = ck.keys();
  checkBaseLayout(ck, keys);
  const names = new Map<string, string>();
  const vae = keys.filter((k) => k.startsWith('first_stage_model.') && !isSupirPartKey(k));
  const vaeNames = vaeKeyNames(ck, vae.map((k) => k.slice('first_stage_model.'.length)));
  vae.forEach((k, i) => add(ck, names, `first_stage_model.${vaeNames[i]!}`, k));
  for (const key of keys) {
    if (key.startsWith('first_stage_model.') || isSupirPartKey(key)) continue;
    if (SDXL_PARTS.some((p) => key.startsWith(p.prefix)) || BASE_EXTRA_PREFIXES.some((p) => key.startsWith(p))) add(ck, names, key, key);
  }
  return identity(ck, names) ? ck : renameView(ck, names);
}

/**
 * A separate VAE file's SDXL VAE (encoder, decoder, quant_conv, post_quant_conv) under
 * `first_stage_model.*`, from the SGM layout with or without that prefix or from the diffusers layout.
 */
export function vaeView(ck: Checkpoint): Checkpoint {
  const keys = ck.keys();
  const prefixed = keys.some((k) => VAE_TOWERS.some((t) => k.startsWith(t)));
  const root = prefixed ? 'first_stage_model.' : '';
  const towers = /^(encoder|decoder|quant_conv|post_quant_conv)\./;
  const vae = keys.filter((k) => k.startsWith(root) && towers.test(k.slice(root.length)));
  if (vae.length === 0) {
    throw new StudioError(
      'BAD_INPUT',
      `${ck.path} (given as the VAE) holds no SDXL VAE: no encoder.*/decoder.* tensors, with or without the first_stage_model. prefix` +
        (holdsSupirWeights(ck) ? ` (it holds SUPIR weights: it is a SUPIR checkpoint)` : ''),
    );
  }
  const names = new Map<string, string>();
  const renamed = vaeKeyNames(ck, vae.map((k) => k.slice(root.length)));
  vae.forEach((k, i) => add(ck, names, `first_stage_model.${renamed[i]!}`, k));
  const convIn = [...names].find(([n]) => n === 'first_stage_model.decoder.conv_in.weight')?.[1];
  const latent = convIn ? ck.shape(convIn)[1] : undefined;
  if (latent !== undefined && latent !== 4) {
    throw new StudioError('BAD_INPUT', `${ck.path} (given as the VAE) is a ${latent}-channel latent VAE (SD3/Flux-style); SDXL's VAE, which SUPIR uses, has 4 latent channels`);
  }
  return renameView(ck, names);
}

/**
 * The SGM names of VAE keys given relative to the VAE root (`encoder.…`): unchanged in the SGM
 * layout, renamed from the diffusers one (told by its `down_blocks`/`up_blocks`/`mid_block` names).
 */
function vaeKeyNames(ck: Checkpoint, keys: readonly string[]): string[] {
  if (!keys.some((k) => /^(encoder|decoder)\.(down_blocks|up_blocks|mid_block)\./.test(k))) return [...keys];
  // Diffusers numbers the decoder's up_blocks from the lowest resolution, SGM's up.N from the highest.
  const levels = new Set(keys.map((k) => /^(?:encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\./.exec(k)?.[1]).filter((x) => x !== undefined)).size;
  return keys.map((k) => diffusersVaeKey(k, levels) ?? refuseVaeKey(ck, k));
}

function refuseVaeKey(ck: Checkpoint, key: string): never {
  throw new StudioError('BAD_INPUT', `${ck.path}: VAE tensor '${key}' is in the diffusers layout but not one this converter knows how to rename`);
}

const RESNET: Record<string, string> = { norm1: 'norm1', conv1: 'conv1', norm2: 'norm2', conv2: 'conv2', conv_shortcut: 'nin_shortcut' };
const ATTENTION: Record<string, string> = { group_norm: 'norm', query: 'q', key: 'k', value: 'v', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out', proj_attn: 'proj_out' };

/** One diffusers VAE key (relative to the VAE root) in SGM naming, or undefined if it is not one. */
export function diffusersVaeKey(key: string, levels: number): string | undefined {
  let m: RegExpExecArray | null;
  if ((m = /^(quant_conv|post_quant_conv|encoder\.conv_in|encoder\.conv_out|decoder\.conv_in|decoder\.conv_out)\.(weight|bias)$/.exec(key))) return key;
  if ((m = /^(encoder|decoder)\.conv_norm_out\.(weight|bias)$/.exec(key))) return `${m[1]}.norm_out.${m[2]}`;
  if ((m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(weight|bias)$/.exec(key)) && RESNET[m[3]!]) return `encoder.down.${m[1]}.block.${m[2]}.${RESNET[m[3]!]}.${m[4]}`;
  if ((m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(key))) return `encoder.down.${m[1]}.downsample.conv.${m[2]}`;
  if ((m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(weight|bias)$/.exec(key)) && RESNET[m[3]!] && Number(m[1]) < levels) {
    return `decoder.up.${levels - 1 - Number(m[1])}.block.${m[2]}.${RESNET[m[3]!]}.${m[4]}`;
  }
  if ((m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(key)) && Number(m[1]) < levels) return `decoder.up.${levels - 1 - Number(m[1])}.upsample.conv.${m[2]}`;
  if ((m = /^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(\w+)\.(weight|bias)$/.exec(key)) && RESNET[m[3]!]) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${RESNET[m[3]!]}.${m[4]}`;
  if ((m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|query|key|value|to_q|to_k|to_v|to_out\.0|proj_attn)\.(weight|bias)$/.exec(key))) {
    return `${m[1]}.mid.attn_1.${ATTENTION[m[2]!]}.${m[3]}`;
  }
  return undefined;
}
