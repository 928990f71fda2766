import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defineNode } from '../api/define.ts';
import { resolveInside, walkFolder } from '../api/data-dirs.ts';
import type { NodeEnv } from '../api/env.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { combo } from '../api/widgets.ts';
import { MANIFEST_FILE, readPack } from './lib/pack-manifest.ts';
import { SUPIR_COMPONENTS, SUPIR_MODEL_KIND } from './lib/pack-contract.ts';

export const DEFAULT_SUPIR_PACK = 'SUPIR-v0Q';
export const PROVIDER_CHOICES = ['auto', 'cuda', 'webgpu', 'cpu'] as const;

/**
 * Folders of the models folder (two levels deep) holding a manifest.json. listFiles cannot list
 * folders. With none, the default name alone is offered, so the combo is never empty; a value
 * not listed is explained by `missingPack` (the convert command), not "not in the list".
 */
export function listPacks(env: NodeEnv): string[] {
  const found: string[] = [];
  walkFolder(
    env.dirs,
    'models',
    (e, rel, full) => {
      if (!e.isDirectory()) return false;
      if (!fs.existsSync(path.join(full, MANIFEST_FILE))) return true;
      found.push(rel);
      return false;
    },
    1,
  );
  found.sort();
  return found.length > 0 ? found : [DEFAULT_SUPIR_PACK];
}

/**
 * The one command that makes the pack the user picked, with their models folder in it. A pack
 * named `SUPIR-v0F-<base>` (as ComfyUI imports name them, server/comfy) names its SUPIR variant
 * and SDXL base file; any other name gets the official pair.
 */
export function convertHint(env: NodeEnv, pack: string): string {
  const out = path.join(env.dirs.folders.models, pack);
  const named = /^SUPIR-v0([QF])(?:-(.+))?$/i.exec(path.basename(pack));
  const supir = `SUPIR-v0${named?.[1]?.toUpperCase() ?? 'Q'}.ckpt`;
  const sdxl = named?.[2] ? `${named[2]}.safetensors` : 'sd_xl_base_1.0_0.9vae.safetensors';
  return `make it with: npx supir-studio convert --supir ${supir} --sdxl ${sdxl} --out ${out}`;
}

/** Whether `pack` names a folder of the models folder holding a manifest. */
function hasManifest(env: NodeEnv, pack: string): boolean {
  try {
    return fs.existsSync(path.join(resolveInside(env.dirs, 'models', pack, 'pack'), MANIFEST_FILE));
  } catch {
    return false;
  }
}

/** What to say of a pack that is not there: where it was looked for and the command that makes it. */
export function missingPack(pack: string, env: NodeEnv): string {
  const found = listPacks(env).filter((p) => hasManifest(env, p));
  const others = found.length ? ` (packs here: ${found.join(', ')})` : '';
  return `there is no model pack '${pack}' in ${env.dirs.folders.models}${others}; ${convertHint(env, pack)}`;
}

/**
 * Opens a SUPIR model pack (converted ONNX components + manifest). Only the manifest and file
 * sizes are checked here; the components are opened by the nodes that run them, so a graph that
 * only decodes never loads the 10 GB denoiser.
 */
export default defineNode({
  id: 'LoadSupirModel',
  displayName: 'Load SUPIR Model',
  category: 'supir',
  description: 'Opens a SUPIR model pack: a folder in the models folder made by `supir-studio convert` from the SUPIR and SDXL checkpoints.',
  inputs: {},
  widgets: {
    pack: combo({ options: listPacks, default: DEFAULT_SUPIR_PACK, unlisted: missingPack, description: 'A folder of the models folder holding manifest.json.' }),
    provider: combo({ options: PROVIDER_CHOICES, default: 'auto', description: 'auto tries CUDA, then WebGPU, then the CPU.' }),
  },
  outputs: { model: 'SUPIR_MODEL' },
  // Said before anything is queued: a template names a pack that a fresh machine does not have.
  validate: ({ pack }, env) => (hasManifest(env, pack) ? [] : [['pack', missingPack(pack, env)]]),
  fingerprint({ pack }, env) {
    // The manifest records every component's sha256, so its own hash stands for the whole pack.
    try {
      return sha256(fs.readFileSync(path.join(resolveInside(env.dirs, 'models', pack, 'pack'), MANIFEST_FILE)));
    } catch {
      return `missing:${pack}`; // execute reports it, with the command that makes the pack
    }
  },
  execute({ pack, provider }, ctx) {
    const dir = resolveInside(ctx.env.dirs, 'models', pack, 'pack');
    try {
      const manifest = readPack(dir, { require: [...SUPIR_COMPONENTS] });
      const vocab = manifest.tokenizer?.vocab;
      if (!vocab || !fs.existsSync(path.join(dir, vocab))) {
        throw new StudioError('NOT_FOUND', `model pack ${dir} has no tokenizer vocabulary${vocab ? ` (${vocab} is missing)` : ''}`);
      }
      const hash = sha256(fs.readFileSync(path.join(dir, MANIFEST_FILE)));
      return { model: { kind: SUPIR_MODEL_KIND, id: dir, hash, name: pack, provider } };
    } catch (err) {
      if (!(err instanceof StudioError)) throw err;
      throw new InputError('pack', `${err.message}; ${convertHint(ctx.env, pack)}`, err.code);
    }
  },
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
