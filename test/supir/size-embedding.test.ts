/**
 * Golden case `size_embedding` (sgm ConcatTimestepEmbedderND × 3, official code) and the SUPIR
 * size constants, checked through the tiny pipeline's recorded conditioner output.
 * Set GOLDEN_REPORT=1 to print the measured max |error|.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdxlVector, sizeVector, SUPIR_SIZE_CONDITION, timestepEmbedding, type SizeCondition } from '../../nodes/supir/lib/size-embedding.ts';
import { closeness } from '../support/close.ts';
import { loadGolden, type GoldenCase } from '../support/golden.ts';

const ATOL = 5e-4;
const measured: Record<string, number> = {};
let golden: GoldenCase;
let rows: SizeCondition[];

beforeAll(async () => {
  golden = await loadGolden('size_embedding');
  const pairs = (key: string): Array<[number, number]> => {
    const v = golden.ints(key);
    return Array.from({ length: v.length / 2 }, (_, i) => [v[2 * i]!, v[2 * i + 1]!]);
  };
  const original = pairs('original_size_as_tuple');
  const crop = pairs('crop_coords_top_left');
  const target = pairs('target_size_as_tuple');
  rows = original.map((o, i) => ({ original: o, crop: crop[i]!, target: target[i]! }));
});

afterAll(() => {
  if (process.env.GOLDEN_REPORT) console.info('size embedding max |err|', measured);
});

function check(name: string, got: Float32Array, want: ArrayLike<number>): void {
  const c = closeness(got, want, ATOL, 0);
  measured[name] = c.maxAbs;
  expect(c.ok, `${name}: max |err| ${c.maxAbs}`).toBe(true);
}

describe('SDXL size embeddings (golden case size_embedding)', () => {
  it('vector_outdim256 (the real SUPIR_v0.yaml embedders) for 3 rows', () => {
    const got = sizeVector(rows, 256);
    expect(got.length).toBe(3 * 1536);
    check('vector_outdim256', got, golden.tensor('vector_outdim256').data);
  });

  it('vector_outdim16 (the tiny model)', () => {
    check('vector_outdim16', sizeVector(rows, 16), golden.tensor('vector_outdim16').data);
  });

  it('is [cos ‖ sin] per scalar, in key order original, crop, target', () => {
    const one = sizeVector([{ original: [0, 1], crop: [2, 3], target: [4, 5] }], 8);
    for (let s = 0; s < 6; s++) expect(Array.from(one.subarray(8 * s, 8 * s + 8))).toEqual(Array.from(timestepEmbedding([s], 8)));
    // s = 0 → cos = 1, sin = 0; f_0 = 1 → the first cos/sin of s = 1 are cos 1, sin 1.
    expect(Array.from(one.subarray(0, 8))).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(one[8]).toBeCloseTo(Math.cos(1), 7);
    expect(one[12]).toBeCloseTo(Math.sin(1), 7);
    // An odd dim gets a trailing zero column, as sgm's timestep_embedding pads it.
    expect(timestepEmbedding([5], 5)[4]).toBe(0);
  });

  it('sdxlVector = pooled ‖ sizes, and SUPIR_SIZE_CONDITION reproduces the tiny pipeline conditioner', async () => {
    const pipeline = await loadGolden('pipeline');
    for (const key of ['c.vector', 'uc.vector']) {
      const want = pipeline.tensor(key); // [1, 32 pooled + 96 sizes]
      const pooled = want.data.slice(0, 32);
      check(`pipeline ${key}`, sdxlVector(pooled, 32, [SUPIR_SIZE_CONDITION], 16), want.data);
    }
    expect(sdxlVector(new Float32Array(2 * 1280), 1280, [SUPIR_SIZE_CONDITION, SUPIR_SIZE_CONDITION]).length).toBe(2 * 2816);
  });

  it('rejects bad inputs', () => {
    expect(() => sizeVector([{ original: [1024, 1024.5], crop: [0, 0], target: [1024, 1024] }])).toThrow(/two non-negative integers/);
    expect(() => sdxlVector(new Float32Array(31), 32, [SUPIR_SIZE_CONDITION], 16)).toThrow(/expected 1 × 32/);
  });
});
