/**
 * SUPIR sampling on the tiny pack (golden weights) on CPU, per step: the network alone (the
 * batched [uncond; cond] denoiser_step run through the runtime) against whole sampler steps, with
 * and without a live preview (latent2rgb + JPEG) every step. Our overhead = what a step costs
 * beyond its network run; the preview's = what previews add to a step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../nodes/api/rng.ts';
import { encodePreview } from '../nodes/image/codec.ts';
import { denoise, type DenoiserCond } from '../nodes/supir/lib/denoiser.ts';
import { latent2rgb } from '../nodes/supir/lib/latent-preview.ts';
import { sampleRestoreEdm } from '../nodes/supir/lib/sampler.ts';
import { batchedControl, batchedText, sessionDenoiserStep } from '../nodes/supir/lib/sampler-cond.ts';
import { convertToPack } from '../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../server/models/pack/tiny.ts';
import { createRuntime } from '../server/runtime/index.ts';

const GOLDEN = path.resolve(import.meta.dirname, '../../shared/golden');
const STEPS = 8;

export async function measureSupirStep(log: (line: string) => void): Promise<void> {
  if (!fs.existsSync(GOLDEN)) return log('  skipped: ../shared/golden is not here');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-step-'));
  await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN, tmp, { fitText: true })), out: path.join(tmp, 'pack'), ...TINY_COMPILE_OPTIONS });
  const runtime = createRuntime({ provider: 'cpu' });
  try {
    const session = await runtime.load(path.join(tmp, 'pack', 'denoiser_step.onnx'));
    const step = sessionDenoiserStep(session);
    for (const side of [16, 64]) {
      const rng = new Rng(side);
      const shape = [1, 4, side, side] as const;
      const size = 4 * side * side;
      const text = { crossattn: { data: rng.fillNormal(new Float32Array(77 * 64)), shape: [1, 77, 64] }, vector: { data: rng.fillNormal(new Float32Array(128)), shape: [1, 128] } };
      const cond: DenoiserCond = { ...batchedText(text, text, 1), control: batchedControl(rng.fillNormal(new Float32Array(size)), [...shape]) };
      /** One sampling run: its wall time and the part spent inside the network calls. */
      const sample = async (preview: boolean): Promise<{ total: number; network: number }> => {
        let network = 0;
        const t0 = performance.now();
        await sampleRestoreEdm({
          denoiser: async (x, sigma, cd, cs) => {
            const t = performance.now();
            const out = (await denoise(step, { data: x, dims: [2, 4, side, side] }, sigma, cd, cs)).data;
            network += performance.now() - t;
            return out;
          },
          cond,
          noise: new Rng(1).fillNormal(new Float32Array(size)),
          drawNoise: () => new Rng(2).fillNormal(new Float32Array(size)),
          steps: STEPS,
          cfg: { scale: 4, scaleMin: 7.5 },
          control: { scale: 1, start: 0, linear: false },
          restoreCfg: 4,
          sChurn: 5,
          sNoise: 1.003,
          xCenter: cond.control.data.subarray(0, size),
          shape: [...shape],
          ...(preview ? { onStep: (_i: number, _x: Float32Array, d: Float32Array) => void encodePreview(latent2rgb({ data: d, c: 4, h: side, w: side })) } : {}),
        });
        return { total: performance.now() - t0, network };
      };
      await sample(true);
      // Plain and preview runs alternate so that drifts of this shared machine hit both alike.
      const overhead: number[] = [];
      const previewCost: number[] = [];
      const stepMs: number[] = [];
      for (let r = 0; r < 6; r++) {
        const plain = await sample(false);
        const withPreview = await sample(true);
        overhead.push((plain.total - plain.network) / plain.total);
        previewCost.push(withPreview.total / plain.total - 1);
        stepMs.push(plain.total / STEPS);
      }
      const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      log(`  latent ${side}x${side}: ${med(stepMs).toFixed(1)} ms/step; outside the network ${(med(overhead) * 100).toFixed(2)} % [aim < 5 %]; a preview every step +${(med(previewCost) * 100).toFixed(1)} % (median of 6 alternating pairs) [aim < 2 %]`);
    }
  } finally {
    await runtime.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
