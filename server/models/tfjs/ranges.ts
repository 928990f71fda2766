/**
 * The pixel range a TF.js model works in is not in model.json: @upscalerjs packages declare it
 * in their JS model definitions (`inputRange`/`outputRange`, e.g. [0, 255] for the "rdn"
 * esrgan-slim/medium, [0, 1] for esrgan-thick). We read it from the owning package's CJS
 * definition for that model.json, so a package update that changes it is followed, not missed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type Range = readonly [number, number];

export interface ModelRanges {
  readonly inputRange: Range;
  readonly outputRange: Range;
  /** Where the ranges came from, for error messages and reports. */
  readonly source: string;
}

export interface OwningPackage {
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  readonly json: Record<string, unknown>;
}

/** The nearest package.json above `file`. */
export function owningPackage(file: string): OwningPackage | undefined {
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const json = JSON.parse(readFileSync(pj, 'utf8')) as Record<string, unknown>;
        return { dir, name: String(json.name ?? ''), version: String(json.version ?? ''), json };
      } catch {
        return undefined;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const isRange = (v: unknown): v is Range =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && v[0] !== v[1];

/**
 * Looks through the package's `exports` for the CJS definition whose `_internals.path` (or
 * `path`) is this model.json. Returns undefined when the package declares nothing for it.
 */
export function packageRanges(modelJson: string): ModelRanges | undefined {
  const pkg = owningPackage(modelJson);
  const exportsMap = pkg?.json.exports;
  if (!pkg || typeof exportsMap !== 'object' || exportsMap === null) return undefined;
  const rel = path.relative(pkg.dir, path.resolve(modelJson)).split(path.sep).join('/');
  const require = createRequire(path.join(pkg.dir, 'package.json'));
  for (const [subpath, target] of Object.entries(exportsMap as Record<string, unknown>)) {
    const cjs = typeof target === 'object' && target !== null ? (target as Record<string, unknown>).require : undefined;
    if (typeof cjs !== 'string') continue;
    let def: unknown;
    try {
      def = require(path.join(pkg.dir, cjs));
    } catch {
      continue;
    }
    if (typeof def !== 'object' || def === null) continue;
    const d = def as Record<string, unknown>;
    const internals = d._internals as Record<string, unknown> | undefined;
    const defPath = String(internals?.path ?? d.path ?? '').replace(/^\.\//, '');
    if (defPath !== rel) continue;
    if (isRange(d.inputRange) && isRange(d.outputRange)) {
      return { inputRange: d.inputRange, outputRange: d.outputRange, source: `${pkg.name}@${pkg.version} ${subpath}` };
    }
    // A definition without ranges leaves them to upscaler's defaults; no shipped package
    // relies on that, so report "unknown" and let the caller choose.
    return undefined;
  }
  return undefined;
}
