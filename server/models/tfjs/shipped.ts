/**
 * The upscalers that ship with the studio: the @upscalerjs ESRGAN packages, converted to ONNX
 * on first use and cached as `<modelsDir>/shipped/<pkg>-<version>-x<scale>.onnx`. The cache is
 * keyed by the INSTALLED package version, so an update reconverts instead of reusing stale files.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { StudioError } from '../../../nodes/api/errors.ts';
import { convertTfjsLayersModel } from './convert.ts';
import { owningPackage } from './ranges.ts';

export interface ShippedModel {
  /** Display name and lookup key, e.g. "esrgan-medium x4". */
  readonly name: string;
  readonly package: string;
  /** The version this table was written against (the cache uses the installed one). */
  readonly version: string;
  readonly scale: 2 | 3 | 4 | 8;
  /** model.json, relative to the package root (see shippedModelJsonPath). */
  readonly modelJson: string;
  /** Conv multiply-adds per output pixel, from the layer shapes (test/models checks them). */
  readonly macsPerOutputPixel: number;
}

const MACS: Record<string, Record<number, number>> = {
  'esrgan-slim': { 2: 55_636, 3: 25_792, 4: 15_772, 8: 9_451 },
  'esrgan-medium': { 2: 173_140, 3: 78_016, 4: 45_148, 8: 16_795 },
  'esrgan-thick': { 2: 1_808_577, 3: 804_817, 4: 453_501, 8: 114_732 },
};

export const SHIPPED_MODELS: readonly ShippedModel[] = Object.entries(MACS).flatMap(([size, perScale]) =>
  ([2, 3, 4, 8] as const).map((scale) => ({
    name: `${size} x${scale}`,
    package: `@upscalerjs/${size}`,
    version: '1.0.0',
    scale,
    modelJson: `models/x${scale}/model.json`,
    macsPerOutputPixel: perScale[scale]!,
  })),
);

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

export async function ensureShippedModel(name: string, modelsDir: string): Promise<{ path: string; hash: string }> {
  const entry = findShippedModel(name);
  const { dir, version } = shippedPackageDir(entry);
  const file = path.join(modelsDir, 'shipped', `${entry.package.split('/').pop()}-${version}-x${entry.scale}.onnx`);
  // Concurrent first uses share one conversion instead of racing to write the same file.
  let job = inFlight.get(file);
  if (!job) {
    job = ensureFile(file, path.join(dir, entry.modelJson)).finally(() => inFlight.delete(file));
    inFlight.set(file, job);
  }
  return job;
}

async function ensureFile(file: string, modelJson: string): Promise<{ path: string; hash: string }> {
  const existing = await stat(file).catch(() => undefined);
  if (existing) {
    const memo = hashes.get(file);
    if (memo && memo.size === existing.size && memo.mtimeMs === existing.mtimeMs) return { path: file, hash: memo.hash };
    const hash = sha256(await readFile(file));
    hashes.set(file, { size: existing.size, mtimeMs: existing.mtimeMs, hash });
    return { path: file, hash };
  }
  const bytes = await convertTfjsLayersModel(modelJson);
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
