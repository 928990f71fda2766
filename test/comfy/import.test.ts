import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { catalogue } from '../../nodes/index.ts';
import { asciiJson, addPngTextChunks } from '../../nodes/image/png-text.ts';
import { runWorkflowFile } from '../../server/cli/run.ts';
import { importComfy } from '../../server/comfy/import.ts';
import { readRunFile } from '../../server/comfy/document.ts';
import { readComfyGraph } from '../../server/comfy/graph.ts';
import { readWidgets } from '../../server/comfy/widgets.ts';
import { reportText, type ComfyReport } from '../../server/comfy/report.ts';
import { NodeRegistry, type Workflow } from '../../server/engine/index.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { GOLDEN_DIR } from '../support/golden.ts';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const REPO = path.resolve(import.meta.dirname, '../..');
const registry = new NodeRegistry(catalogue);
const UPSCALE_MODELS = ['esrgan-slim x2', 'esrgan-medium x2', 'esrgan-medium x4', 'esrgan-thick x4'];
const fixture = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
const load = (name: string): { workflow: Workflow; report: ComfyReport } => importComfy(fixture(name), { registry, upscaleModels: UPSCALE_MODELS });
const node = (wf: Workflow, id: number): Workflow['nodes'][number] => {
  const found = wf.nodes.find((n) => n.id === id);
  if (!found) throw new Error(`no node ${id}`);
  return found;
};
const ofType = (wf: Workflow, type: string): Array<Workflow['nodes'][number]> => wf.nodes.filter((n) => n.type === type);
const messages = (r: ComfyReport, level?: string): string => r.entries.filter((e) => !level || e.level === level).map((e) => `${e.comfy}: ${e.message}`).join('\n');
/** The node an input is linked from. */
const sourceOf = (wf: Workflow, n: Workflow['nodes'][number], input: string): Workflow['nodes'][number] | undefined => {
  const link = wf.links.find((l) => l[0] === n.inputs.find((i) => i.name === input)?.link);
  return link ? node(wf, link[1]) : undefined;
};

describe('ComfyUI positional widget values', () => {
  const sampleNode = (values: unknown[]) => readComfyGraph({ nodes: [{ id: 1, type: 'SUPIR_sample', pos: [0, 0], widgets_values: values }], links: [] }).nodes.get('1')!;
  const tail = [10, 2, 1.5, 5, 1.003, 1, 1, 0.9, 1, false, 'RestoreDPMPP2MSampler', 1024, 512];

  it('skip the "control after generate" value after a seed, and read files without it the same', () => {
    const withControl = readWidgets(sampleNode([42, 'fixed', ...tail]));
    const without = readWidgets(sampleNode([42, ...tail]));
    for (const read of [withControl, without]) {
      expect(read.values).toMatchObject({ seed: 42, steps: 10, cfg_scale_start: 2, cfg_scale_end: 1.5, control_scale_end: 0.9, sampler: 'RestoreDPMPP2MSampler', sampler_tile_stride: 512 });
      expect(read.misaligned).toBeUndefined();
    }
    expect(withControl.uiOnly).toEqual(['seed control after generate "fixed"']);
  });

  it('say so when values do not line up (one value too many)', () => {
    const read = readWidgets(sampleNode([42, 'fixed', 'fixed', ...tail]));
    expect(read.misaligned).toMatch(/steps got "fixed"/);
  });

  it('skip the control value of an integer primitive, but not a text that happens to read "fixed"', () => {
    const prim = readComfyGraph({ nodes: [{ id: 1, type: 'PrimitiveNode', pos: [0, 0], outputs: [{ name: 'INT', type: 'INT', links: [] }], widgets_values: [7, 'randomize'] }], links: [] }).nodes.get('1')!;
    expect(readWidgets(prim)).toMatchObject({ values: { value: 7 }, uiOnly: ['value control after generate "randomize"'] });
    expect(readWidgets(prim).misaligned).toBeUndefined();
    const text = readComfyGraph({ nodes: [{ id: 1, type: 'ImageScale', pos: [0, 0], widgets_values: ['bilinear', 512, 150, 'disabled'] }], links: [] }).nodes.get('1')!;
    expect(readWidgets(text).values).toEqual({ upscale_method: 'bilinear', width: 512, height: 150, crop: 'disabled' });
  });

  it('read values in an earlier layout of the node when they fit it and not the current one', () => {
    // ComfyUI-SUPIR v2 of March 2024: no DPMPP_eta between s_noise and control_scale_start.
    const old = readWidgets(sampleNode([7, 'fixed', 30, 3, 6, 5, 1.01, 0.8, 1, 2, false, 'TiledRestoreEDMSampler', 512, 256]));
    expect(old.layout).toMatch(/March 2024/);
    expect(old.values).toMatchObject({ steps: 30, cfg_scale_start: 3, cfg_scale_end: 6, EDM_s_churn: 5, s_noise: 1.01, control_scale_start: 0.8, control_scale_end: 1, restore_cfg: 2, sampler: 'TiledRestoreEDMSampler', sampler_tile_size: 512 });
    expect(old.misaligned).toBeUndefined();
    const resize = readComfyGraph({ nodes: [{ id: 1, type: 'ImageResize+', pos: [0, 0], widgets_values: [800, 600, 'bicubic', true, 'always', 0] }], links: [] }).nodes.get('1')!;
    expect(readWidgets(resize).values).toMatchObject({ width: 800, height: 600, keep_proportion: true });
  });

  it("skip Load Image's upload button value", () => {
    const n = readComfyGraph({ nodes: [{ id: 1, type: 'LoadImage', pos: [0, 0], widgets_values: ['a.png', 'image'] }], links: [] }).nodes.get('1')!;
    expect(readWidgets(n)).toMatchObject({ values: { image: 'a.png' }, uiOnly: ['the upload button'] });
  });

  it('take values by name where the file names them (a PNG\'s prompt chunk beats shifted positions)', () => {
    const wf = fixture('kijai-v2-lightning.json') as { nodes: Array<{ id: number; widgets_values: unknown }> };
    // An editor that dropped the control value and shifted everything: steps would read 2, cfg 1.5, ...
    wf.nodes.find((n) => n.id === 10)!.widgets_values = [42, 2, 1.5, 5, 1.003, 1, 1, 0.9, 1, false, 'RestoreDPMPP2MSampler', 1024, 512];
    const prompt = { '10': { class_type: 'SUPIR_sample', inputs: { seed: 42, steps: 10, cfg_scale_start: 2, cfg_scale_end: 1.5, EDM_s_churn: 5, s_noise: 1.003, DPMPP_eta: 1, control_scale_start: 1, control_scale_end: 0.9, restore_cfg: 1, keep_model_loaded: false, sampler: 'RestoreDPMPP2MSampler', sampler_tile_size: 1024, sampler_tile_stride: 512 } } };
    const shifted = importComfy(wf, { registry }).workflow;
    expect(node(shifted, 10).widgets_values.steps).not.toBe(10);
    const named = importComfy(wf, { registry, prompt }).workflow;
    expect(node(named, 10).widgets_values).toMatchObject({ steps: 10, cfg_scale_start: 2, cfg_scale: 1.5, control_scale: 0.9 });
  });
});

describe('ComfyUI import', () => {
  it('kijai v2 (Lightning example shape): every node mapped, virtual wires and reroutes joined, values translated', () => {
    const { workflow: wf, report } = load('kijai-v2-lightning.json');
    expect(report.source).toBe('ComfyUI workflow (schema 0.4)');
    // ComfyUI's ids are kept.
    expect(node(wf, 10).type).toBe('SupirSample');
    expect(node(wf, 5)).toMatchObject({ type: 'LoadSupirModel', widgets_values: { pack: 'SUPIR-v0Q-juggernautXL_v9Rdphoto2Lightning' } });
    expect(node(wf, 10).widgets_values).toMatchObject({
      sampler: 'DPM++ 2M Karras + restoration guidance (not in the paper)',
      seed: 42,
      steps: 10,
      cfg_scale_start: 2,
      cfg_scale: 1.5,
      linear_cfg: true,
      control_scale_start: 1,
      control_scale: 0.9,
      linear_control_scale: true,
      restoration_scale: -1,
      tile_size: 0,
    });
    // The conditioner's latents are the control; the encoded latents are x_center.
    expect(sourceOf(wf, node(wf, 10), 'control')?.type).toBe('SupirStage1');
    expect(sourceOf(wf, node(wf, 10), 'x_center')?.type).toBe('SupirEncode');
    expect(sourceOf(wf, node(wf, 13), 'model')?.id).toBe(5); // through Set/Get "VAE"
    expect(sourceOf(wf, node(wf, 7), 'image')?.type).toBe('SupirResize');
    expect(node(wf, 3).widgets_values).toMatchObject({ mode: 'fit', width: 1024, height: 1024 });
    expect(node(wf, 15).type).toBe('ColourFix');
    expect(sourceOf(wf, sourceOf(wf, node(wf, 15), 'reference')!, 'image')?.id).toBe(1); // Get "Source" = the loaded image
    expect(node(wf, 16).type).toBe('CompareImages');
    for (const gone of [2, 4, 6, 11, 12, 14]) expect(wf.nodes.some((n) => n.id === gone)).toBe(false);
    expect(messages(report, 'mapped')).toMatch(/#4 CheckpointLoaderSimple: the SDXL base "juggernautXL_v9Rdphoto2Lightning.safetensors" is part of model pack/);
    expect(messages(report, 'translated')).toMatch(/skipped seed control after generate "fixed"/);
    expect(report.convert).toEqual(['npx supir-studio convert --supir SUPIR-v0Q_fp16.safetensors --sdxl juggernautXL_v9Rdphoto2Lightning.safetensors --out data/models/SUPIR-v0Q-juggernautXL_v9Rdphoto2Lightning']);
    expect(wf.groups[0]?.title).toBe('SUPIR');
    expect(reportText(report)).toMatch(/18 mapped/);
  });

  it('kijai v2 tiled EDM: pixels → latent cells, a primitive seed, SUPIR_tiles values on widget inputs, old short value lists', () => {
    const { workflow: wf, report } = load('kijai-v2-tiled-edm.json');
    expect(node(wf, 13).widgets_values).toMatchObject({ sampler: 'RestoreEDM', seed: 7, steps: 3, cfg_scale_start: 7.5, cfg_scale: 4, control_scale_start: 0.7, control_scale: 1, restoration_scale: 4, s_churn: 5, tile_size: 32, tile_stride: 16 });
    expect(node(wf, 13).inputs.some((i) => i.widget)).toBe(false);
    expect(node(wf, 14).widgets_values).toMatchObject({ tile_size: 0 });
    expect(node(wf, 10).widgets_values).toMatchObject({ caption: 'a stone bridge over a river', a_prompt: ', high quality, detailed' });
    expect(node(wf, 2)).toMatchObject({ type: 'ImageResize', mode: 4 });
    expect(node(wf, 16)).toMatchObject({ type: 'PreviewImage', mode: 2 });
    expect(node(wf, 11)).toMatchObject({ type: 'TileImage', widgets_values: { tile_size: 256, overlap: 128 } });
    expect(messages(report, 'translated')).toMatch(/sampler_tile_size 256 px → tile_size 32 latent cells/);
    expect(messages(report, 'unsupported')).toMatch(/keep_model_loaded/);
    expect(messages(report)).not.toMatch(/do not line up/);
    expect(wf.nodes.some((n) => n.type.startsWith('comfy:'))).toBe(false);
  });

  it('maps all four ComfyUI-SUPIR samplers (tiles in pixels → latent cells; DPM++ without a ramp is the official one)', () => {
    const cases: Array<[string, number, number, Record<string, unknown>]> = [
      ['RestoreEDMSampler', 1, 0.9, { sampler: 'RestoreEDM', tile_size: 0, restoration_scale: 4, s_churn: 5 }],
      ['TiledRestoreEDMSampler', 1, 1, { sampler: 'RestoreEDM', tile_size: 96, tile_stride: 48, linear_control_scale: false }],
      ['RestoreDPMPP2MSampler', 1, 1, { sampler: 'DPM++ 2M Karras', restoration_scale: -1, s_churn: 0, linear_control_scale: false }],
      ['TiledRestoreDPMPP2MSampler', 0.5, 1, { sampler: 'DPM++ 2M Karras + restoration guidance (not in the paper)', tile_size: 96, tile_stride: 48, linear_control_scale: true }],
    ];
    for (const [sampler, start, end, expected] of cases) {
      const wf = fixture('kijai-v2-lightning.json') as { nodes: Array<{ id: number; widgets_values: unknown }> };
      wf.nodes.find((n) => n.id === 10)!.widgets_values = [42, 'fixed', 20, 3, 6, 5, 1.003, 1, start, end, 4, false, sampler, 768, 384];
      expect(node(importComfy(wf, { registry }).workflow, 10).widgets_values, sampler).toMatchObject(expected);
    }
  });

  it('the first kijai loader (both files named on the node) and VAEEncode on the pack', () => {
    const prompt = {
      '1': { class_type: 'LoadImage', inputs: { image: 'photo.png' } },
      '2': { class_type: 'SUPIR_model_loader', inputs: { supir_model: 'SUPIR-v0F.ckpt', sdxl_model: 'sd_xl_base_1.0_0.9vae.safetensors', fp8_unet: true, diffusion_dtype: 'fp16' } },
      '3': { class_type: 'SUPIR_first_stage', inputs: { SUPIR_VAE: ['2', 1], image: ['1', 0], use_tiled_vae: true, encoder_tile_size: 256, decoder_tile_size: 256, encoder_dtype: 'auto' } },
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'x.safetensors' } },
      '5': { class_type: 'VAEEncode', inputs: { pixels: ['3', 1], vae: ['2', 1] } },
    };
    const { workflow: wf, report } = importComfy(prompt, { registry });
    expect(node(wf, 2).widgets_values.pack).toBe('SUPIR-v0F');
    expect(node(wf, 3).widgets_values.tile_size).toBe(256);
    expect(node(wf, 5).type).toBe('SupirEncode');
    expect(messages(report, 'unsupported')).toMatch(/fp8_unet/);
    expect(messages(report, 'translated')).toMatch(/diffusion_dtype fp16: the precision is the pack's/);
    // A checkpoint that feeds no SUPIR loader is kept, muted, saying why.
    expect(node(wf, 4)).toMatchObject({ type: 'comfy:CheckpointLoaderSimple', mode: 2 });
    expect(messages(report, 'unsupported')).toMatch(/#4 CheckpointLoaderSimple: kept as a muted placeholder: an SD\/SDXL checkpoint that feeds no SUPIR loader/);
  });

  it('legacy SUPIR_Upscale expands into the pipeline it runs', () => {
    const { workflow: wf, report } = load('kijai-legacy-upscale.json');
    expect(ofType(wf, 'LoadSupirModel')[0]?.widgets_values.pack).toBe('SUPIR-v0Q');
    expect(ofType(wf, 'SupirSample')[0]?.widgets_values).toMatchObject({ seed: 1234, steps: 4, cfg_scale: 4, restoration_scale: -1, s_churn: 5 });
    expect(ofType(wf, 'SupirDecode')[0]?.widgets_values.tile_size).toBe(512); // 64 latent cells → 512 px
    expect(node(wf, 2)).toMatchObject({ type: 'ColourFix', widgets_values: { method: 'Wavelet' } });
    expect(sourceOf(wf, node(wf, 3), 'image')?.id).toBe(2);
    expect(messages(report)).toMatch(/expanded into the graph it runs/);
  });

  it('native SUPIR in a schema 1.0 subgraph: expanded, SUPIRApply + SamplerCustom → Stage-1 + Sample, promoted widget value used', () => {
    const { workflow: wf, report } = load('native-supir-subgraph.json');
    expect(report.source).toMatch(/schema 1.0\), 1 subgraph expanded/);
    const sample = ofType(wf, 'SupirSample')[0]!;
    expect(sample.widgets_values).toMatchObject({ sampler: 'DPM++ 2M Karras + restoration guidance (not in the paper)', seed: 2024, steps: 10, cfg_scale: 1.5, linear_cfg: false, control_scale_start: 1, control_scale: 0.9, linear_control_scale: true, restoration_scale: 4 });
    expect(sourceOf(wf, sample, 'x_center')?.type).toBe('SupirEncode');
    expect(ofType(wf, 'TextEncodeSDXL')[0]?.widgets_values).toMatchObject({ a_prompt: 'a restored photograph, sharp, detailed', n_prompt: 'blurry, noisy, jpeg artifacts' });
    expect(sourceOf(wf, node(wf, 4), 'image')?.type).toBe('ColourFix');
    expect(messages(report, 'translated')).toMatch(/scheduler "sgm_uniform"/);
    expect(node(wf, 5)).toMatchObject({ type: 'comfy:MarkdownNote', mode: 2, properties: { comfy_missing: expect.stringMatching(/MarkdownNote/) } });
    expect(wf.groups[0]?.title).toBe('Native SUPIR');
  });

  it('native SUPIR as an API prompt: KSampler, CLIPTextEncode from an unmapped node kept as a muted placeholder', () => {
    const { workflow: wf, report } = load('native-ksampler.api.json');
    expect(report.source).toBe('ComfyUI API prompt');
    expect(node(wf, 10).widgets_values).toMatchObject({ sampler: 'RestoreEDM', s_churn: 0, seed: 5, steps: 6, cfg_scale: 3, restoration_scale: -1, linear_control_scale: false });
    expect(node(wf, 4).widgets_values.pack).toBe('SUPIR-v0F');
    expect(node(wf, 6)).toMatchObject({ type: 'comfy:TextGenerate', mode: 2 });
    expect(messages(report, 'unsupported')).toMatch(/#6 TextGenerate: kept as a muted placeholder/);
    expect(node(wf, 2).widgets_values).toMatchObject({ mode: 'size', width: 128, height: 96, method: 'bicubic' });
    // Laid out left to right by depth.
    expect(node(wf, 13).pos[0]).toBeGreaterThan(node(wf, 1).pos[0]);
  });

  it('core upscale nodes: model picked by scale, primitive inlined, reroute joined, unknown node kept', () => {
    const { workflow: wf, report } = load('core-upscale.json');
    expect(node(wf, 2).widgets_values.model_name).toBe('esrgan-medium x4');
    expect(node(wf, 5).widgets_values).toMatchObject({ mode: 'size', width: 200, height: 150, method: 'bilinear' });
    expect(sourceOf(wf, node(wf, 7), 'image')?.id).toBe(5);
    // It takes and gives an IMAGE: bypassed, so the graph around it runs.
    expect(node(wf, 10)).toMatchObject({ type: 'comfy:FaceDetailer', mode: 4, properties: { comfy_missing: expect.stringMatching(/bypassed: its IMAGE input passes through/) } });
    expect(messages(report, 'translated')).toMatch(/4x-UltraSharp.pth.*esrgan-medium x4/);
  });
});

describe('imported workflows run', () => {
  let tinyPack = '';
  let small: Buffer;
  beforeAll(async () => {
    small = await sharp(path.resolve(REPO, 'assets/inputs/chelsea.png')).resize(128, 96, { kernel: 'cubic' }).png().toBuffer();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'comfy-pack-'));
    tinyPack = path.join(tmp, 'supir-tiny');
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, tmp, { fitText: true })), out: tinyPack, ...TINY_COMPILE_OPTIONS });
  }, 180_000);

  function dataFolder(withPack: boolean): string {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'comfy-run-'));
    fs.mkdirSync(path.join(data, 'inputs'), { recursive: true });
    fs.writeFileSync(path.join(data, 'inputs', 'photo.png'), small);
    if (withPack) fs.cpSync(tinyPack, path.join(data, 'models', 'supir-tiny'), { recursive: true });
    return data;
  }

  const SUPIR_RUNS: Record<string, string[]> = {
    'kijai-v2-lightning.json': ['3.width=128', '3.height=128', '10.steps=4'],
    'kijai-v2-tiled-edm.json': [],
    'kijai-legacy-upscale.json': ['SupirSample.steps=3'],
    'native-supir-subgraph.json': ['SupirSample.steps=3'],
    'native-ksampler.api.json': ['10.steps=3'],
  };
  for (const [file, sets] of Object.entries(SUPIR_RUNS)) {
    it(`${file} runs on the tiny pack`, async () => {
      const lines: string[] = [];
      const summary = await runWorkflowFile({ file: path.join(FIXTURES, file), sets: ['LoadSupirModel.pack=supir-tiny', ...sets], json: true, data: dataFolder(true) }, (l) => lines.push(l), new AbortController().signal);
      expect(summary.error, JSON.stringify(summary.error)).toBeUndefined();
      expect(summary.status).toBe('success');
      const outputs = Object.values(summary.outputs).flat();
      expect(outputs.length).toBeGreaterThan(0);
      for (const out of outputs) expect((await sharp(out).metadata()).width).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/mapped, \d+ translated/);
    }, 240_000);

    it(`${file} headless without a pack fails only on the missing pack, naming the convert command`, async () => {
      const run = runWorkflowFile({ file: path.join(FIXTURES, file), sets: [], json: true, data: dataFolder(false) }, () => undefined, new AbortController().signal);
      const err = await run.then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).toMatch(/there is no model pack '[^']+'.*npx supir-studio convert/);
      const problems = err!.message.split('\n').slice(1).filter((l) => l.trim());
      expect(problems.length, err!.message).toBe(1);
      expect(problems[0]).toMatch(/LoadSupirModel\) input 'pack'/);
    }, 60_000);
  }

  it('core-upscale.json runs on the shipped ESRGAN model', async () => {
    const summary = await runWorkflowFile({ file: path.join(FIXTURES, 'core-upscale.json'), sets: [], json: true, data: dataFolder(false) }, () => undefined, new AbortController().signal);
    expect(summary.status).toBe('success');
    const [saved] = summary.outputs['7']!;
    expect(await sharp(saved!).metadata()).toMatchObject({ width: 200, height: 150 });
  }, 240_000);

  it('a PNG that ComfyUI wrote (workflow + prompt chunks) opens with the prompt\'s values', async () => {
    const wf = fixture('kijai-v2-lightning.json');
    const prompt = { '10': { class_type: 'SUPIR_sample', inputs: { seed: 9, steps: 7 } } };
    const png = addPngTextChunks(small, { prompt: asciiJson(prompt), workflow: asciiJson(wf) });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'comfy-png-')), 'ComfyUI_00001_.png');
    fs.writeFileSync(file, png);
    const doc = readRunFile(file, { registry });
    expect(doc.imported?.report.source).toBe('ComfyUI workflow (schema 0.4)');
    expect(node(doc.imported!.workflow, 10).widgets_values).toMatchObject({ seed: 9, steps: 7 });
    // A PNG with only the prompt (an API client's output) imports from the prompt.
    const onlyPrompt = addPngTextChunks(small, { prompt: asciiJson(fixture('native-ksampler.api.json')) });
    fs.writeFileSync(file, onlyPrompt);
    expect(readRunFile(file, { registry }).imported?.report.source).toBe('ComfyUI API prompt');
  });
});
