/**
 * Architecture derivation from weight names and shapes. On the tiny golden weights it must give
 * the config's lists (supir_tiny_config.json); on the real SUPIR/SDXL geometry it must give
 * 320/[1,2,4]/[1,2,10]/2048/2816. The real geometry comes from `officialKeys`, a transcription
 * of the official constructors (sgm UNetModel, GLVControl, LightGLVUNet 'XL-base'), which is
 * itself checked against the tiny file (same keys and shapes) and the published parameter counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { weightsFromMap, type Weights, type WeightTensor } from '../../server/models/onnx/layers.ts';
import { supirUnetArch, type SupirUnetArch, type TrunkArch } from '../../server/models/supir/unet-arch.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { officialKeys, SDXL, TINY } from '../../server/models/supir/official-layout.ts';

const count = (keys: Map<string, number[]>, prefix = ''): number =>
  [...keys].filter(([k]) => k.startsWith(prefix)).reduce((s, [, d]) => s + d.reduce((a, b) => a * b, 1), 0);

function shapesOnly(...maps: Array<Map<string, number[]>>): Weights {
  const m = new Map<string, WeightTensor>();
  for (const keys of maps) for (const [k, dims] of keys) m.set(k, { data: new Float32Array(0), dims });
  return weightsFromMap(m, 'shapes');
}

function trunkSummary(t: TrunkArch): Record<string, unknown> {
  const transformers = [...t.input.flatMap((b) => (b.kind === 'res' && b.transformer ? [b.transformer] : [])), t.middle.transformer];
  return {
    model_channels: t.modelChannels,
    channel_mult: t.channelMult,
    num_res_blocks: t.numResBlocks,
    attention_resolutions: t.transformerDepth.flatMap((d, l) => (d > 0 ? [2 ** l] : [])),
    transformer_depth: t.transformerDepth,
    middle_depth: t.middle.transformer.depth,
    context_dim: t.contextDim,
    adm_in_channels: t.admInChannels,
    heads: [...new Set(transformers.map((x) => x.heads))],
  };
}

let tinyFile: Map<string, number[]>;
let tinyArch: SupirUnetArch;
let config: { yaml_equivalent: any; derived: any }; // the json's shape is documented in the golden README

beforeAll(async () => {
  const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, 'supir_tiny_model.safetensors'));
  tinyFile = new Map(file.keys().filter((k) => k.startsWith('model.')).map((k) => [k, file.entry(k).shape]));
  await file.close();
  tinyArch = supirUnetArch(shapesOnly(tinyFile), { numHeadChannels: TINY.headChannels });
  config = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'supir_tiny_config.json'), 'utf8'));
});

describe('UNet / GLVControl architecture from the weights', () => {
  it('officialKeys reproduces the tiny checkpoint exactly (keys, shapes, parameter counts)', () => {
    const ours = new Map([...officialKeys(TINY, 'unet'), ...officialKeys(TINY, 'control')]);
    expect(Object.fromEntries([...ours].sort())).toEqual(Object.fromEntries([...tinyFile].sort()));
    expect(count(ours, 'model.diffusion_model')).toBe(config.derived.n_params.diffusion_model);
    expect(count(ours, 'model.control_model')).toBe(config.derived.n_params.control_model);
  });

  it('tiny: trunk lists match the yaml (both networks)', () => {
    const y = config.yaml_equivalent.model.params;
    for (const [t, params] of [
      [tinyArch.unet, y.network_config.params],
      [tinyArch.control, y.control_stage_config.params],
    ] as const) {
      expect(trunkSummary(t)).toEqual({
        model_channels: params.model_channels,
        channel_mult: params.channel_mult,
        num_res_blocks: params.num_res_blocks,
        attention_resolutions: [...params.attention_resolutions].sort((a: number, b: number) => a - b),
        // sgm ignores the first entry when level 0 has no attention, and the middle uses the last.
        transformer_depth: params.transformer_depth.map((d: number, l: number) => (params.attention_resolutions.includes(2 ** l) ? d : 0)),
        middle_depth: params.transformer_depth.at(-1),
        context_dim: params.context_dim,
        adm_in_channels: params.adm_in_channels,
        heads: [64 / params.num_head_channels],
      });
    }
    expect(tinyArch.control.featureChannels).toEqual([32, 32, 32, 32, 64, 64, 64, 64, 64, 64]);
    expect(tinyArch.hintChannels).toBe(4);
  });

  it('tiny: project modules and LightGLVUNet lists match supir_tiny_config.json', () => {
    expect(tinyArch.lists).toEqual({
      condOutputChannels: config.derived.cond_output_channels,
      projectChannels: config.derived.project_channels,
      concatChannels: config.derived.concat_channels,
    });
    const described = tinyArch.projects.map((p, index) =>
      p.kind === 'sft'
        ? { index, type: 'ZeroSFT', label_nc: p.labelNc, norm_nc: p.normNc, norm_total: p.normNc + p.concatChannels, pre_concat: p.concatChannels > 0, nhidden: p.nhidden }
        : { index, type: 'ZeroCrossAttn', query_dim: p.queryDim, context_dim: p.contextDim, heads: p.heads, dim_head: p.dimHead },
    );
    expect(described).toEqual(config.derived.project_modules);
    expect(tinyArch.middle).toEqual({ sft: 11, control: 9 });
    expect(tinyArch.decoder.map((d) => [d.sft, d.xattn ?? null, d.control])).toEqual([
      [10, null, 8], [9, null, 7], [8, 7, 6], [6, null, 5], [5, null, 4], [4, 3, 3], [2, null, 2], [1, null, 1], [0, null, 0],
    ]);
  });

  it('SDXL/SUPIR geometry: published parameter counts and the real config', () => {
    const unet = officialKeys(SDXL, 'unet');
    const control = officialKeys(SDXL, 'control');
    const projects = count(unet, 'model.diffusion_model.project_modules');
    // docs/supir-reference.md: SDXL UNet 2,567,463,684; GLVControl 1,243,378,880; project modules 54,797,440.
    expect([count(unet) - projects, count(control), projects]).toEqual([2_567_463_684, 1_243_378_880, 54_797_440]);
    const arch = supirUnetArch(shapesOnly(unet, control));
    for (const t of [arch.unet, arch.control]) {
      expect(trunkSummary(t)).toEqual({
        model_channels: 320, channel_mult: [1, 2, 4], num_res_blocks: 2, attention_resolutions: [2, 4],
        transformer_depth: [0, 2, 10], middle_depth: 10, context_dim: 2048, adm_in_channels: 2816, heads: [10, 20],
      });
    }
    expect(arch.lists).toEqual({
      condOutputChannels: [320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280],
      projectChannels: [320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280],
      concatChannels: [320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 0],
    });
    expect([arch.projects[3], arch.projects[7]]).toMatchObject([
      { kind: 'xattn', queryDim: 640, contextDim: 320, heads: 10, dimHead: 64 },
      { kind: 'xattn', queryDim: 1280, contextDim: 640, heads: 20, dimHead: 64 },
    ]);
    expect(arch.projects.filter((p) => p.kind === 'sft').every((p) => p.kind === 'sft' && p.nhidden === 128)).toBe(true);
  });

  it('refuses a project module of the wrong kind, naming it', () => {
    const broken = new Map(tinyFile);
    for (const k of [...broken.keys()]) if (k.startsWith('model.diffusion_model.project_modules.7.')) broken.delete(k);
    for (const [k, d] of tinyFile) if (k.startsWith('model.diffusion_model.project_modules.8.')) broken.set(k.replace('.8.', '.7.'), d);
    expect(() => supirUnetArch(shapesOnly(broken), { numHeadChannels: 16 })).toThrow(/project module 7 in output block 2 should be ZeroCrossAttn/);
  });
});
