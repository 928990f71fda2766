/**
 * SUPIR ships as a delta: its checkpoint holds only what SUPIR trained (GLVControl, the UNet's
 * project_modules, the VAE's denoise_encoder, maybe more), and the official loader lays it over an
 * SDXL base by key. The merged view does the same, and checks what the official code (strict=False)
 * does not: swapped files, shape clashes and missing keys become errors that name the key and file.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import { openCheckpoint, type Checkpoint, type DType } from './checkpoint.ts';

/** Prefixes only a SUPIR checkpoint holds: they tell the two files apart. */
export const SUPIR_PREFIXES = ['model.control_model.', 'model.diffusion_model.project_modules.', 'first_stage_model.denoise_encoder.'];

/** With no explicit key list, each of these groups must have at least one key in the merged view. */
export const SUPIR_KEY_GROUPS = [
  'model.diffusion_model.',
  'model.control_model.',
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
}

export function isSupirKey(key: string): boolean {
  return SUPIR_PREFIXES.some((p) => key.startsWith(p));
}

/**
 * A view where SUPIR keys override SDXL keys of the same name. The view owns both checkpoints:
 * closing it closes them.
 */
export function mergeCheckpoints(supir: Checkpoint, sdxl: Checkpoint, options: MergeOptions = {}): Checkpoint {
  checkRoles(supir, sdxl);
  const owner = new Map<string, Checkpoint>();
  for (const k of sdxl.keys()) owner.set(k, sdxl);
  const clashes: string[] = [];
  for (const k of supir.keys()) {
    if (sdxl.has(k) && !sameShape(supir.shape(k), sdxl.shape(k))) {
      clashes.push(`'${k}': ${supir.path} has [${supir.shape(k).join(', ')}], ${sdxl.path} has [${sdxl.shape(k).join(', ')}]`);
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
  checkComplete(owner, supir, sdxl, options);
  const get = (key: string): Checkpoint => {
    const c = owner.get(key);
    if (!c) throw new StudioError('NOT_FOUND', `neither ${supir.path} nor ${sdxl.path} has tensor '${key}'`);
    return c;
  };
  return {
    path: `${supir.path} + ${sdxl.path}`,
    format: 'merged',
    keys: () => [...owner.keys()],
    has: (key) => owner.has(key),
    shape: (key) => get(key).shape(key),
    dtype: (key): DType => get(key).dtype(key),
    source: (key) => get(key).path,
    bytes: async (key) => get(key).bytes(key),
    float32: async (key) => get(key).float32(key),
    close: async () => {
      await Promise.all([supir.close(), sdxl.close()]);
    },
  };
}

/** Opens both files and merges them; on any error both are closed again. */
export async function openMerged(supirPath: string, sdxlPath: string, options: MergeOptions = {}): Promise<Checkpoint> {
  const supir = await openCheckpoint(supirPath);
  let sdxl: Checkpoint | undefined;
  try {
    sdxl = await openCheckpoint(sdxlPath);
    return mergeCheckpoints(supir, sdxl, options);
  } catch (err) {
    await Promise.all([supir.close(), sdxl?.close()]);
    throw err;
  }
}

/** The SUPIR file must hold SUPIR weights; if only the other one does, the two were swapped. */
function checkRoles(supir: Checkpoint, sdxl: Checkpoint): void {
  if (supir.path === sdxl.path) throw new StudioError('BAD_INPUT', `${supir.path} was given both as the SUPIR checkpoint and as the SDXL base`);
  if (supir.keys().some(isSupirKey)) return;
  const what = SUPIR_PREFIXES.map((p) => `${p}*`).join(', ');
  if (sdxl.keys().some(isSupirKey)) {
    throw new StudioError(
      'BAD_INPUT',
      `the checkpoints look swapped: ${supir.path} (given as the SUPIR checkpoint) holds no SUPIR weights (${what}), ` +
        `while ${sdxl.path} (given as the SDXL base) does. Pass the SUPIR file as the SUPIR checkpoint and the SDXL file as the base`,
    );
  }
  throw new StudioError('BAD_INPUT', `${supir.path} is not a SUPIR checkpoint: it holds none of ${what}`);
}

function checkComplete(owner: Map<string, Checkpoint>, supir: Checkpoint, sdxl: Checkpoint, options: MergeOptions): void {
  const optional = options.optional ?? ((k: string) => RECOMPUTABLE_KEYS.has(k));
  const keys = [...owner.keys()];
  const missing = options.required
    ? [...options.required].filter((k) => !owner.has(k) && !optional(k))
    : SUPIR_KEY_GROUPS.filter((g) => !keys.some((k) => k.startsWith(g))).map((g) => `${g}*`);
  if (missing.length === 0) return;
  // Grouped by the file that should hold them, so the message says which download is wrong.
  const byFile = new Map<string, string[]>();
  for (const k of missing) {
    const where = isSupirKey(k) ? `${supir.path} (SUPIR)` : `${sdxl.path} (SDXL base)`;
    byFile.set(where, [...(byFile.get(where) ?? []), k]);
  }
  const parts = [...byFile].map(([where, keys]) => {
    const shown = keys.slice(0, 3).map((k) => `'${k}'`).join(', ');
    return `expected in ${where}: ${shown}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`;
  });
  // A base that holds SUPIR weights but lacks the SDXL text encoders is a second SUPIR file.
  const hint =
    sdxl.keys().some(isSupirKey) && !sdxl.keys().some((k) => k.startsWith('conditioner.'))
      ? ` ${sdxl.path} looks like a SUPIR checkpoint, not the SDXL base (sd_xl_base_1.0).`
      : '';
  throw new StudioError(
    'BAD_INPUT',
    `the merged SUPIR + SDXL weights lack ${missing.length} key${missing.length === 1 ? '' : 's'} the model needs; ${parts.join('; ')}.${hint}`,
  );
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
