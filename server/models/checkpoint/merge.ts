/**
 * SUPIR ships as a delta: its checkpoint holds only what SUPIR trained (GLVControl, the UNet's
 * project_modules, the VAE's denoise_encoder), and the official loader lays it over an SDXL base by
 * key. The merged view does the same, and checks what the official code (strict=False) does not:
 * swapped files, shape clashes and missing keys become errors that name the key and file.
 *
 * Both files are first brought to the SGM key layout (layout.ts): the official and the pruned fp16
 * SUPIR files, ComfyUI's model-patch layout of them, and any single-file SDXL fine-tune as the base
 * (only the parts SUPIR reads are taken from it). The SDXL VAE may come from a third file, for a base
 * without one baked in.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import { openCheckpoint, type Checkpoint, type DType } from './checkpoint.ts';
import { holdsSupirWeights, isSupirPartKey, SDXL_PARTS, SUPIR_PARTS, sdxlView, supirView, VAE_TOWERS, vaeView } from './layout.ts';

/** Prefixes only a SUPIR checkpoint holds: they tell the two files apart. */
export const SUPIR_PREFIXES = SUPIR_PARTS.map((p) => p.prefix);

/** With no explicit key list, each of these groups must have at least one key in the merged view. */
export const SUPIR_KEY_GROUPS = [
  'model.diffusion_model.',
  'model.control_model.',
  'model.diffusion_model.project_modules.',
  'first_stage_model.encoder.',
  'first_stage_model.decoder.',
  'first_stage_model.denoise_encoder.',
  'conditioner.embedders.0.transformer.text_model.',
  'conditioner.embedders.1.model.',
];

/** Buffers the model recomputes from its config; checkpoints have them or not depending on versions. */
export const RECOMPUTABLE_KEYS: ReadonlySet<string> = new Set([
  'denoiser.sigmas',
  'conditioner.embedders.0.transformer.text_model.embeddings.position_ids',
]);

export interface MergeOptions {
  /** Every key the compiled model reads (the compiler's list); without it only the groups are checked. */
  required?: Iterable<string>;
  /** Keys of `required` that may be absent. Default: RECOMPUTABLE_KEYS. */
  optional?: (key: string) => boolean;
  /**
   * A separate SDXL VAE (sdxl_vae.safetensors, SGM or diffusers layout): its encoder, decoder and
   * quant convs replace the base's. The merged view owns it (closing the view closes it).
   */
  vae?: Checkpoint;
}

export function isSupirKey(key: string): boolean {
  return isSupirPartKey(key);
}

/**
 * A view where SUPIR keys override SDXL keys of the same name. The view owns the checkpoints:
 * closing it closes them.
 */
export function mergeCheckpoints(supirFile: Checkpoint, sdxlFile: Checkpoint, options: MergeOptions = {}): Checkpoint {
  const supir = supirView(supirFile);
  checkRoles(supir, sdxlFile);
  const sdxl = sdxlView(sdxlFile);
  const vae = options.vae ? vaeView(options.vae) : undefined;
  const owner = new Map<string, Checkpoint>();
  for (const k of sdxl.keys()) {
    // The separate VAE replaces the base's whole VAE, so the two are never mixed key by key.
    if (!(vae && VAE_TOWERS.some((t) => k.startsWith(t)))) owner.set(k, sdxl);
  }
  for (const k of vae?.keys() ?? []) owner.set(k, vae!);
  const clashes: string[] = [];
  for (const k of supir.keys()) {
    const under = owner.get(k);
    if (under && !sameShape(supir.shape(k), under.shape(k))) {
      clashes.push(`'${k}': ${supir.path} has [${supir.shape(k).join(', ')}], ${under.path} has [${under.shape(k).join(', ')}]`);
    }
    owner.set(k, supir);
  }
  if (clashes.length > 0) {
    throw new StudioError(
      'BAD_INPUT',
      `the SUPIR checkpoint does not fit the SDXL base: shape mismatch for ${clashes.slice(0, 3).join('; ')}` +
        `${clashes.length > 3 ? ` (and ${clashes.length - 3} more)` : ''}. Is ${sdxl.path} an SDXL 1.0 base checkpoint?`,
    );
  }
  checkComplete(owner, { supir, sdxl, sdxlFile, vae }, options);
  const files = [supir, sdxl, ...(vae ? [vae] : [])];
  const get = (key: string): Checkpoint => {
    const c = owner.get(key);
    if (!c) throw new StudioError('NOT_FOUND', `neither ${files.map((f) => f.path).join(' nor ')} has tensor '${key}'`);
    return c;
  };
  return {
    path: files.map((f) => f.path).join(' + '),
    format: 'merged',
    keys: () => [...owner.keys()],
    has: (key) => owner.has(key),
    shape: (key) => get(key).shape(key),
    dtype: (key): DType => get(key).dtype(key),
    source: (key) => get(key).path,
    bytes: async (key) => get(key).bytes(key),
    float32: async (key) => get(key).float32(key),
    close: async () => {
      await Promise.all(files.map((f) => f.close()));
    },
  };
}

export interface OpenMergedOptions extends Omit<MergeOptions, 'vae'> {
  /** Path of a separate SDXL VAE file (see MergeOptions.vae). */
  vae?: string | undefined;
}

/** Opens the files and merges them; on any error every file opened is closed again. */
export async function openMerged(supirPath: string, sdxlPath: string, options: OpenMergedOptions = {}): Promise<Checkpoint> {
  const opened: Checkpoint[] = [];
  try {
    const supir = await openCheckpoint(supirPath);
    opened.push(supir);
    const sdxl = await openCheckpoint(sdxlPath);
    opened.push(sdxl);
    const vae = options.vae ? await openCheckpoint(options.vae) : undefined;
    if (vae) opened.push(vae);
    return mergeCheckpoints(supir, sdxl, { ...options, vae });
  } catch (err) {
    await Promise.all(opened.map((c) => c.close()));
    throw err;
  }
}

/** The SUPIR file must hold SUPIR weights; if only the other one does, the two were swapped. */
function checkRoles(supir: Checkpoint, sdxl: Checkpoint): void {
  if (supir.path === sdxl.path) throw new StudioError('BAD_INPUT', `${supir.path} was given both as the SUPIR checkpoint and as the SDXL base`);
  if (supir.keys().some(isSupirKey)) return;
  const what = SUPIR_PREFIXES.map((p) => `${p}*`).join(', ');
  if (holdsSupirWeights(sdxl)) {
    throw new StudioError(
      'BAD_INPUT',
      `the checkpoints look swapped: ${supir.path} (given as the SUPIR checkpoint) holds no SUPIR weights (${what}), ` +
        `while ${sdxl.path} (given as the SDXL base) does. Pass the SUPIR file as the SUPIR checkpoint and the SDXL file as the base`,
    );
  }
  throw new StudioError('BAD_INPUT', `${supir.path} is not a SUPIR checkpoint: it holds none of ${what}`);
}

interface Sources {
  supir: Checkpoint;
  /** The base as the merge sees it (SGM names, parts SUPIR reads) and as the file is. */
  sdxl: Checkpoint;
  sdxlFile: Checkpoint;
  vae: Checkpoint | undefined;
}

function checkComplete(owner: Map<string, Checkpoint>, src: Sources, options: MergeOptions): void {
  const optional = options.optional ?? ((k: string) => RECOMPUTABLE_KEYS.has(k));
  const keys = [...owner.keys()];
  const missing = options.required
    ? [...options.required].filter((k) => !owner.has(k) && !optional(k))
    : SUPIR_KEY_GROUPS.filter((g) => !keys.some((k) => k.startsWith(g))).map((g) => `${g}*`);
  if (missing.length === 0) return;
  // Grouped by the file that should hold them, so the message says which download is wrong.
  const byFile = new Map<string, string[]>();
  for (const k of missing) {
    const where = isSupirKey(k)
      ? `${src.supir.path} (SUPIR)`
      : src.vae && VAE_TOWERS.some((t) => k.startsWith(t))
        ? `${src.vae.path} (VAE)`
        : `${src.sdxl.path} (SDXL base)`;
    byFile.set(where, [...(byFile.get(where) ?? []), k]);
  }
  const parts = [...byFile].map(([where, keys]) => {
    const shown = keys.slice(0, 3).map((k) => `'${k}'`).join(', ');
    return `expected in ${where}: ${shown}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`;
  });
  throw new StudioError(
    'BAD_INPUT',
    `the merged SUPIR + SDXL weights lack ${missing.length} key${missing.length === 1 ? '' : 's'} the model needs; ${parts.join('; ')}.${absentParts(missing, src)}`,
  );
}

/** Whole parts a file lacks, said in words: a pruned SUPIR file without GLVControl, a base without a VAE. */
function absentParts(missing: readonly string[], src: Sources): string {
  const lacks = (ck: Checkpoint, prefix: string): boolean => !ck.keys().some((k) => k.startsWith(prefix));
  const wanted = (prefix: string): boolean => missing.some((k) => k.startsWith(prefix));
  const notes: string[] = [];
  const supirLacks = SUPIR_PARTS.filter((p) => wanted(p.prefix) && lacks(src.supir, p.prefix));
  if (supirLacks.length > 0) {
    notes.push(
      `${src.supir.path} has no ${supirLacks.map((p) => `${p.what} (${p.prefix}*)`).join(', no ')}: ` +
        `a SUPIR checkpoint (SUPIR-v0Q/v0F, .ckpt or the pruned _fp16.safetensors) holds all of ${SUPIR_PREFIXES.map((p) => `${p}*`).join(', ')}`,
    );
  }
  // A base that holds SUPIR weights but lacks the SDXL text encoders is a second SUPIR file.
  if (holdsSupirWeights(src.sdxlFile) && !src.sdxlFile.keys().some((k) => k.startsWith('conditioner.'))) {
    notes.push(`${src.sdxlFile.path} looks like a SUPIR checkpoint, not the SDXL base (sd_xl_base_1.0)`);
  } else {
    const baseLacks = SDXL_PARTS.filter((p) => wanted(p.prefix) && lacks(src.sdxl, p.prefix === 'first_stage_model.' ? 'first_stage_model.decoder.' : p.prefix));
    const vaeOnly = baseLacks.length === 1 && baseLacks[0]!.prefix === 'first_stage_model.';
    if (vaeOnly && src.vae === undefined) {
      notes.push(
        `${src.sdxl.path} has no VAE (first_stage_model.*): it is a checkpoint without the VAE baked in: ` +
          'give the SDXL VAE (sdxl_vae.safetensors) as the separate VAE file (convert --vae)',
      );
    } else if (baseLacks.length > 0 && !vaeOnly) {
      const parts = baseLacks.filter((p) => !(src.vae && p.prefix === 'first_stage_model.'));
      notes.push(
        `${src.sdxl.path} has no ${parts.map((p) => `${p.what} (${p.prefix}*)`).join(' and no ')}: ` +
          'use the full single-file SDXL checkpoint, which holds the UNet, the VAE and both text encoders',
      );
    }
  }
  return notes.map((n) => ` ${n}.`).join('');
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
