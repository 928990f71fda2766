/**
 * The golden `pipeline` case end to end — SUPIRModel.batchify_sample on the tiny model — run
 * through a converted model pack in the real runtime (worker threads), with the two recorded
 * random draws injected where the nodes would take them from their seeds:
 * stage 1 → encode x_stage1 (noise_draws.0) → RestoreEDM sampling (noise_draws.1, recorded c/uc)
 * → decode → wavelet colour fix. The recorded conditioning comes from the golden's stub text
 * embedder, so text encoding is checked by its own case.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TensorData } from '../../nodes/api/runtime.ts';
import { colourFix } from '../../nodes/supir/lib/colorfix.ts';
import { denoise, type DenoiserCond } from '../../nodes/supir/lib/denoiser.ts';
import { sampleRestoreEdm } from '../../nodes/supir/lib/sampler.ts';
import { batchedControl, batchedText, sessionDenoiserStep } from '../../nodes/supir/lib/sampler-cond.ts';
import { SupirVae } from '../../nodes/supir/lib/vae-pipeline.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { closeness, GOLDEN_DIR, loadGolden, type GoldenCase } from '../support/golden.ts';

describe('SUPIR pipeline (golden batchify_sample) through a converted pack', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-pipeline-'));
  let runtime: StudioRuntime;
  let g: GoldenCase;
  let result: Record<string, Float32Array> = {};

  beforeAll(async () => {
    const files = await writeTinyCheckpoints(GOLDEN_DIR, tmp);
    const pack = path.join(tmp, 'pack');
    await convertToPack({ ...files, out: pack, ...TINY_COMPILE_OPTIONS });
    runtime = createRuntime({ provider: 'cpu' });
    const open = (c: string) => runtime.load(path.join(pack, `${c}.onnx`));
    const vae = new SupirVae({ encoder: await open('vae_encoder'), denoiseEncoder: await open('vae_denoise_encoder'), decoder: await open('vae_decoder') });
    g = await loadGolden('pipeline');
    const image = g.tensor('image');
    const stage1 = await vae.stage1({ data: image.data, dims: image.dims });
    const zStage1 = await vae.encode(stage1.image, g.tensor('noise_draws.0').data);
    const [n, c, h, w] = stage1.z.dims as [number, number, number, number];
    const t = (name: string) => ({ data: g.tensor(name).data, shape: g.tensor(name).dims });
    const cond: DenoiserCond = {
      ...batchedText({ crossattn: t('uc.crossattn'), vector: t('uc.vector') }, { crossattn: t('c.crossattn'), vector: t('c.vector') }, n),
      control: batchedControl(stage1.z.data, stage1.z.dims),
    };
    const step = sessionDenoiserStep(await open('denoiser_step'));
    const trajectory: Float32Array[] = [];
    // batchify_sample's mapping of the gradio arguments: LinearCFG scale 7.5 → scale_min; start 4.0 → scale.
    const samples = await sampleRestoreEdm({
      denoiser: async (x, sigma, cd, cs) => (await denoise(step, { data: x, dims: [2 * n, c, h, w] } as TensorData, sigma, cd, cs)).data,
      cond,
      noise: g.tensor('noise_draws.1').data,
      drawNoise: () => {
        throw new Error('s_churn is 0: no churn draws');
      },
      steps: 10,
      cfg: { scale: 4.0, scaleMin: 7.5 },
      control: { scale: 1.0, start: 0.0, linear: true },
      restoreCfg: 4.0,
      sChurn: 0,
      sNoise: 1.003,
      xCenter: zStage1.data,
      shape: [n, c, h, w],
      onStep: (_i, x) => trajectory.push(x.slice()),
    });
    const decoded = await vae.decode({ data: samples, dims: [n, c, h, w] });
    const [, ic, ih, iw] = decoded.dims as [number, number, number, number];
    const fixed = colourFix({ data: decoded.data, n, c: ic, h: ih, w: iw }, { data: stage1.image.data, n, c: ic, h: ih, w: iw }, 'Wavelet');
    result = { _z: stage1.z.data, x_stage1: stage1.image.data, z_stage1: zStage1.data, 'trajectory.9': trajectory[9]!, samples_before_colorfix: decoded.data, out: fixed.data };
  }, 120_000);
  afterAll(async () => {
    await runtime?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it.each(['_z', 'x_stage1', 'z_stage1', 'trajectory.9', 'samples_before_colorfix', 'out'])('%s matches within the case tolerance (2e-3)', (name) => {
    const r = closeness(result[name]!, g.tensor(name).data, 2e-3, 2e-3);
    expect(r.ok, `${name}: max |diff| ${r.maxAbs}`).toBe(true);
  });
});
