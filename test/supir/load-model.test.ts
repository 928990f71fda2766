/**
 * Load SUPIR Model says how to make a pack that is not there before anything is queued: a prompt
 * naming a missing pack fails validation with the convert command and the packs that do exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { catalogue } from '../../nodes/index.ts';
import { compilePrompt, NodeRegistry, type ApiPrompt } from '../../server/engine/index.ts';
import { tempEnv } from '../support/fake-context.ts';

const registry = new NodeRegistry(catalogue);
const { env, cleanup } = tempEnv();
afterAll(cleanup);

const prompt = (pack: string): ApiPrompt => ({
  '1': { class_type: 'LoadSupirModel', inputs: { pack, provider: 'cpu' } },
  '2': { class_type: 'LoadImage', inputs: { image: 'x.png' } },
  '3': { class_type: 'SupirStage1', inputs: { model: ['1', 0], image: ['2', 0], tile_size: 0 } },
  '4': { class_type: 'SaveImage', inputs: { image: ['3', 0] } },
});

function packErrors(pack: string): string[] {
  const result = compilePrompt(prompt(pack), registry, env);
  return result.ok ? [] : result.errors.filter((e) => e.node_id === '1').map((e) => e.message);
}

describe('Load SUPIR Model with no pack', () => {
  it('refuses the default pack on a fresh machine with the command that makes it', () => {
    const models = env.dirs.folders.models;
    expect(packErrors('SUPIR-v0Q')).toEqual([
      `widget 'pack': there is no model pack 'SUPIR-v0Q' in ${models}; make it with: npx supir-studio convert --supir SUPIR-v0Q.ckpt --sdxl sd_xl_base_1.0_0.9vae.safetensors --out ${path.join(models, 'SUPIR-v0Q')}`,
    ]);
  });

  it('names the packs that exist when a workflow asks for another', () => {
    fs.mkdirSync(path.join(env.dirs.folders.models, 'supir-v0F'), { recursive: true });
    fs.writeFileSync(path.join(env.dirs.folders.models, 'supir-v0F', 'manifest.json'), '{}');
    const [message] = packErrors('supir-tiny');
    expect(message).toMatch(/^widget 'pack': there is no model pack 'supir-tiny' in .* \(packs here: supir-v0F\); make it with: npx supir-studio convert/);
    expect(packErrors('supir-v0F')).toEqual([]);
  });
});
