/**
 * The image models that ship with the studio through npm, converted to ONNX on first use:
 * - the @upscalerjs ESRGAN packages (TF.js layers models, any input size), cached as
 *   `<modelsDir>/shipped/<pkg>-<version>-x<scale>.onnx`;
 * - the @upscalerjs MAXIM packages (TF.js graph models: denoise, deblur, derain, dehaze, low-light
 *   enhance, retouch), converted for one square tile size each, cached as
 *   `<modelsDir>/shipped/<pkg>-<version>-<tile>px.onnx`.
 * The cache is keyed by the INSTALLED package version (and the converter's version), so an update
 * reconverts instead of reusing stale files.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { StudioError } from '../../../nodes/api/errors.ts';
import { CONVERTER_VERSION, convertTfjsLayersModel } from './convert.ts';
import { convertTfjsGraphModel, GRAPH_CONVERTER_VERSION } from './graph/convert.ts';
import { owningPackage } from './ranges.ts';

export interface ShippedModel {
  /** Display name and lookup key, e.g. "esrgan-medium x4", "maxim-denoising". */
  readonly name: string;
  readonly package: string;
  /** The version this table was written against (the cache uses the installed one). */
  readonly version: string;
  readonly scale: 1 | 2 | 3 | 4 | 8;
  /** model.json, relative to the package root (see shippedModelJsonPath). */
  readonly modelJson: string;
  /** Conv (and matmul) multiply-adds per output pixel, from the layer shapes (test/models checks them). */
  readonly macsPerOutputPixel: number;
  /** What it does, in words for the model list. */
  readonly task: string;
  /**
   * Graph models are converted for one square input size: a multiple of this (MAXIM's
   * divisibility factor). Absent for models that take any size.
   */
  readonly tileMultiple?: number;
}

const MACS: Record<string, Record<number, number>> = {
  'esrgan-slim': { 2: 55_636, 3: 25_792, 4: 15_772, 8: 9_451 },
  'esrgan-medium': { 2: 173_140, 3: 78_016, 4: 45_148, 8: 16_795 },
  'esrgan-thick': { 2: 1_808_577, 3: 804_817, 4: 453_501, 8: 114_732 },
};

const ESRGAN: readonly ShippedModel[] = Object.entries(MACS).flatMap(([size, perScale]) =>
  ([2, 3, 4, 8] as const).map((scale) => ({
    name: `${size} x${scale}`,
    package: `@upscalerjs/${size}`,
    version: '1.0.0',
    scale,
    modelJson: `models/x${scale}/model.json`,
    macsPerOutputPixel: perScale[scale]!,
    task: `x${scale} super-resolution (ESRGAN ${size.slice(7)}, DIV2K bicubic)`,
  })),
);

/**
 * MAXIM (Tu et al., CVPR 2022) restoration models. Multiply-adds per pixel at a 128 px tile: the
 * three-stage models (denoise, deblur) and the two-stage ones; they grow slowly with the tile
 * (the resize matrices), test/models/maxim-parity.test.ts checks them.
 */
const MAXIM_TASKS: Record<string, { task: string; macs: number }> = {
  'maxim-denoising': { task: 'denoise (real camera noise, SIDD)', macs: 2_428_102 },
  'maxim-deblurring': { task: 'deblur (camera motion blur, GoPro)', macs: 2_428_102 },
  'maxim-deraining': { task: 'remove rain streaks (Rain13k)', macs: 1_545_993 },
  'maxim-dehazing-indoor': { task: 'dehaze indoor photos (RESIDE indoor)', macs: 1_545_993 },
  'maxim-dehazing-outdoor': { task: 'dehaze outdoor photos (RESIDE outdoor)', macs: 1_545_993 },
  'maxim-enhancement': { task: 'brighten low-light photos (LOL)', macs: 1_545_993 },
  'maxim-retouching': { task: 'retouch colour and tone (MIT-Adobe FiveK)', macs: 1_545_993 },
};

const MAXIM: readonly ShippedModel[] = Object.entries(MAXIM_TASKS).map(([name, { task, macs }]) => ({
  name,
  package: `@upscalerjs/${name}`,
  version: '0.1.0',
  scale: 1,
  modelJson: 'models/model.json',
  macsPerOutputPixel: macs,
  task,
  tileMultiple: 64,
}));

export const SHIPPED_MODELS: readonly ShippedModel[] = [...MAXIM, ...ESRGAN];

export function findShippedModel(name: string): ShippedModel {
  const entry = SHIPPED_MODELS.find((m) => m.name === name);
  if (!entry) {
    throw new StudioError('NOT_FOUND', `no shipped model '${name}' (have: ${SHIPPED_MODELS.map((m) => m.name).join(', ')})`);
  }
  return entry;
}

/** The installed package's root (its `exports` hide package.json, so walk up from the entry). */
export function shippedPackageDir(entry: ShippedModel): { dir: string; version: string } {
  let resolved: string;
  try {
    resolved = createRequire(import.meta.url).resolve(entry.package);
  } catch {
    throw new StudioError('NOT_FOUND', `model package ${entry.package} is not installed`);
  }
  const pkg = owningPackage(resolved);
  if (!pkg || pkg.name !== entry.package) throw new StudioError('NOT_FOUND', `cannot find the root of ${entry.package}`);
  return { dir: pkg.dir, version: pkg.version };
}

export function shippedModelJsonPath(entry: ShippedModel): string {
  return path.join(shippedPackageDir(entry).dir, entry.modelJson);
}

const inFlight = new Map<string, Promise<{ path: string; hash: string }>>();
const hashes = new Map<string, { size: number; mtimeMs: number; hash: string }>();

/**
 * The converted ONNX file of a shipped model (converting it on first use). Graph models need
 * `tile`: the square input side the file is made for, a multiple of the model's tileMultiple.
 */
export async function ensureShippedModel(name: string, modelsDir: string, opts: { tile?: number } = {}): Promise<{ path: string; hash: string }> {
  const entry = findShippedModel(name);
  const { dir, version } = shippedPackageDir(entry);
  const base = entry.package.split('/').pop();
  let file: string;
  let convert: () => Promise<Uint8Array>;
  const modelJson = path.join(dir, entry.modelJson);
  if (entry.tileMultiple) {
    const tile = opts.tile;
    if (!tile || tile % entry.tileMultiple !== 0) {
      throw new StudioError('BAD_INPUT', `${entry.name} runs on square tiles whose side is a multiple of ${entry.tileMultiple} px; got ${tile ?? 'none'}`);
    }
    file = path.join(modelsDir, 'shipped', `${base}-${version}-c${GRAPH_CONVERTER_VERSION}-${tile}px.onnx`);
    convert = async () => (await convertTfjsGraphModel(modelJson, { height: tile, width: tile })).bytes;
  } else {
    file = path.join(modelsDir, 'shipped', `${base}-${version}-c${CONVERTER_VERSION}-x${entry.scale}.onnx`);
    convert = () => convertTfjsLayersModel(modelJson);
  }
  // Concurrent first uses share one conversion instead of racing to write the same file.
  let job = inFlight.get(file);
  if (!job) {
    job = ensureFile(file, convert).finally(() => inFlight.delete(file));
    inFlight.set(file, job);
  }
  return job;
}

async function ensureFile(file: string, convert: () => Promise<Uint8Array>): Promise<{ path: string; hash: string }> {
  const existing = await stat(file).catch(() => undefined);
  if (existing) {
    const memo = hashes.get(file);
    if (memo && memo.size === existing.size && memo.mtimeMs === existing.mtimeMs) return { path: file, hash: memo.hash };
    const hash = sha256(await readFile(file));
    hashes.set(file, { size: existing.size, mtimeMs: existing.mtimeMs, hash });
    return { path: file, hash };
  }
  const bytes = await convert();
  await mkdir(path.dirname(file), { recursive: true });
  // Write beside the target and rename: readers never see a half-written model.
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new StudioError('INTERNAL', `cannot write ${file}: ${(err as Error).message}`);
  }
  const written = await stat(file);
  const hash = sha256(bytes);
  hashes.set(file, { size: written.size, mtimeMs: written.mtimeMs, hash });
  return { path: file, hash };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
