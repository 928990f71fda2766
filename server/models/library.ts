import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { listFiles, resolveInside, type DataDirs } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ModelEntry, ModelKind, ModelLibrary } from '../../nodes/api/models.ts';
import { ensureShippedModel, findShippedModel, SHIPPED_MODELS } from './tfjs/index.ts';

/** Converted shipped models live here inside the models folder; they are not listed as the user's. */
const SHIPPED_SUBFOLDER = 'shipped/';

/**
 * The models nodes can choose from: the ESRGAN and MAXIM models that ship through npm (converted
 * to ONNX on first use) and the ONNX files the user dropped into the models folder.
 */
export function createModelLibrary(dirs: DataDirs): ModelLibrary {
  const hashes = new Map<string, { size: number; mtimeMs: number; hash: string }>();
  const shipped: ModelEntry[] = SHIPPED_MODELS.map((m) => ({
    name: m.name,
    kind: 'upscale',
    scale: m.scale,
    source: 'shipped',
    description: `${m.task} — ${m.package} ${m.version}`,
    ...(m.tileMultiple ? { tileMultiple: m.tileMultiple } : {}),
  }));

  const userEntries = (): ModelEntry[] =>
    listFiles(dirs, 'models', ['.onnx'])
      .filter((f) => !f.startsWith(SHIPPED_SUBFOLDER))
      .map((name) => ({ name, kind: 'upscale', source: 'user', ...scaleFromName(name) }));

  return {
    list(kind: ModelKind): ModelEntry[] {
      return [...shipped, ...userEntries()].filter((m) => m.kind === kind);
    },
    async resolve(name, opts = {}) {
      const ship = shipped.find((m) => m.name === name);
      if (ship) {
        const { path, hash } = await ensureShippedModel(findShippedModel(name).name, dirs.folders.models, opts);
        return { path, hash, entry: ship };
      }
      const entry = userEntries().find((m) => m.name === name);
      if (!entry) throw new StudioError('NOT_FOUND', `no model named ${JSON.stringify(name)} in the models folder`);
      const file = resolveInside(dirs, 'models', name);
      return { path: file, hash: await hashFile(file, hashes), entry };
    },
  };
}

/** "4x-UltraSharp.onnx" or "realesr_x2.onnx" tell their scale; otherwise the model is run to find it. */
function scaleFromName(name: string): { scale?: number } {
  const m = /(?:^|[^a-z0-9])(?:x(\d)|(\d)x)(?:[^a-z0-9]|$)/i.exec(name);
  const digit = m?.[1] ?? m?.[2];
  return digit ? { scale: Number(digit) } : {};
}

async function hashFile(file: string, memo: Map<string, { size: number; mtimeMs: number; hash: string }>): Promise<string> {
  const stat = await fs.promises.stat(file);
  const known = memo.get(file);
  if (known && known.size === stat.size && known.mtimeMs === stat.mtimeMs) return known.hash;
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  memo.set(file, { size: stat.size, mtimeMs: stat.mtimeMs, hash: digest });
  return digest;
}
