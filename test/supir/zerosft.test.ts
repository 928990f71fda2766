/**
 * Golden case `zerosft_nhidden128`: the official ZeroSFT with its real hard-coded nhidden 128
 * (the tiny model uses 24), on the decoder path cat([h_ori, h]), at control_scale 1.0 and 0.6.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { projectArch, zeroSft, type ZeroSftArch } from '../../server/models/supir/zerosft.ts';
import { closeness } from '../support/close.ts';
import { loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

let golden: GoldenCase;
let arch: ZeroSftArch;
let session: ort.InferenceSession;

beforeAll(async () => {
  golden = await loadGolden('zerosft_nhidden128');
  const w = await loadGoldenWeights('zerosft_nhidden128.weights.safetensors');
  const a = projectArch(w, 'sft_concat');
  if (a.kind !== 'sft') throw new Error('sft_concat read as ZeroCrossAttn');
  arch = a;
  const g = new GraphBuilder({ name: 'zerosft' });
  const dims = ['batch', 32, 'h', 'w'];
  const c = g.input('c', 'float32', dims);
  const h = g.input('h', 'float32', dims);
  const hOri = g.input('h_ori', 'float32', dims);
  const cs = g.input('control_scale', 'float32', []);
  g.output(zeroSft(g, w, arch, c, h, hOri, cs), 'out', 'float32', ['batch', 64, 'h', 'w']);
  session = await ort.InferenceSession.create(g.toBytes());
});

describe('ZeroSFT vs the official module (nhidden 128)', () => {
  it('reads the sizes from the weights', () => {
    expect(arch).toMatchObject({ labelNc: 32, normNc: 32, concatChannels: 32, nhidden: 128 });
  });

  it.each([
    ['concat_cs1p0', 1.0],
    ['concat_cs0p6', 0.6],
  ])('%s', async (name, cs) => {
    const t = (n: string): ort.Tensor => new ort.Tensor('float32', golden.tensor(n).data, golden.tensor(n).dims);
    const out = await session.run({ c: t('c'), h: t('h'), h_ori: t('h_ori'), control_scale: new ort.Tensor('float32', Float32Array.of(cs), []) });
    const { atol, rtol } = golden.json.tolerance;
    const r = closeness(out.out!.data as Float32Array, golden.tensor(name).data, atol, rtol);
    expect(r.worst, `max |diff| ${r.maxAbs}`).toBeLessThanOrEqual(atol);
  });
});
