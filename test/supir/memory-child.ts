/**
 * Run by memory-estimate.test.ts in a fresh process: one tiny golden denoiser_step (CFG batch) or
 * VAE decoder run at a given size on the CPU; prints the growth of peak RSS over the run (the
 * activations, weights and session already loaded) as JSON.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { buildDecoderGraph } from '../../server/models/supir/vae.ts';
import { readVaeWeights } from '../../server/models/supir/vae-weights.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { GOLDEN_DIR, loadGoldenWeights } from '../support/golden.ts';

const [kind, sideArg] = process.argv.slice(2);
const side = Number(sideArg);
const fill = (dims: number[]): ort.Tensor => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.5), dims);
let bytes: Uint8Array;
let feeds: Record<string, ort.Tensor>;
if (kind === 'denoiser') {
  bytes = buildDenoiserStep(await loadGoldenWeights('supir_tiny_model.safetensors'), { numHeadChannels: 16 }).graph.toBytes();
  feeds = {
    x: fill([2, 4, side, side]),
    timesteps: new ort.Tensor('int64', BigInt64Array.of(500n, 500n), [2]),
    context: fill([2, 77, 64]),
    y: fill([2, 128]),
    control: fill([2, 4, side, side]),
    control_scale: new ort.Tensor('float32', Float32Array.of(1), []),
  };
} else {
  const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, 'supir_tiny_vae.safetensors'));
  bytes = buildDecoderGraph(await readVaeWeights([file]));
  await file.close();
  feeds = { latent: fill([1, 4, side / 2, side / 2]) };
}
const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
const before = process.resourceUsage().maxRSS * 1024;
await session.run(feeds);
process.stdout.write(JSON.stringify({ grew: process.resourceUsage().maxRSS * 1024 - before }));
