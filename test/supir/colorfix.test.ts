/**
 * Golden case `colorfix` (official SUPIR/utils/colorfix.py, see the golden README): the tensor
 * functions within 1e-5, the PIL uint8 entry points exactly (±1 where the float lands within 1e-4
 * of an integer after ×255, the case's stated tolerance). GOLDEN_REPORT=1 prints the errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  adaptiveInstanceNormalization,
  pilColourFix,
  waveletBlur,
  waveletDecomposition,
  waveletReconstruction,
  type Planes,
} from '../../nodes/supir/lib/colorfix.ts';
import { closeness } from '../support/close.ts';
import { loadGolden, type GoldenCase } from '../support/golden.ts';

let golden: GoldenCase;
const measured: Record<string, number> = {};

function planes(name: string): Planes {
  const t = golden.tensor(name);
  const [n, c, h, w] = t.dims as [number, number, number, number];
  return { data: t.data, n, c, h, w };
}

function expectClose(name: string, got: Planes): void {
  const c = closeness(got.data, golden.tensor(name).data, 1e-5, 1e-5);
  measured[name] = c.maxAbs;
  expect(c.ok, `${name}: max |err| ${c.maxAbs}`).toBe(true);
}

beforeAll(async () => {
  golden = await loadGolden('colorfix');
});

describe('colour fix against the official colorfix.py', () => {
  it('wavelet_blur(style, 1)', () => expectClose('style_blur_r1', waveletBlur(planes('style'), 1)));

  it('wavelet_decomposition(content): high and low bands', () => {
    const { high, low } = waveletDecomposition(planes('content'));
    expectClose('content_high_freq', high);
    expectClose('content_low_freq', low);
  });

  it('wavelet_reconstruction and adaptive_instance_normalization', () => {
    expectClose('wavelet', waveletReconstruction(planes('content'), planes('style')));
    expectClose('adain', adaptiveInstanceNormalization(planes('content'), planes('style')));
  });

  it('PIL wavelet_color_fix / adain_color_fix on uint8 pixels', () => {
    const [h, w, c] = golden.json.tensors['target_u8']!.shape as [number, number, number];
    const target = golden.ints('target_u8');
    const source = golden.ints('source_u8');
    for (const [method, name] of [['Wavelet', 'pil_wavelet_u8'], ['AdaIN', 'pil_adain_u8']] as const) {
      const got = pilColourFix(target, source, h, w, c, method);
      const want = golden.ints(name);
      let worst = 0;
      let mismatches = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        worst = Math.max(worst, d);
        if (d !== 0) mismatches++;
      }
      measured[`${name} max diff`] = worst;
      measured[`${name} values off`] = mismatches;
      expect(worst, `${name}: ${mismatches} of ${want.length} values differ`).toBeLessThanOrEqual(1);
      expect(mismatches, name).toBeLessThanOrEqual(Math.ceil(want.length * 0.01));
    }
    if (process.env.GOLDEN_REPORT) process.stderr.write(`colorfix max |err|: ${JSON.stringify(measured)}\n`);
  });
});
