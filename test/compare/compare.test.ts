import fs from 'node:fs';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveInside } from '../../nodes/api/data-dirs.ts';
import CompareImages from '../../nodes/compare/compare.ts';
import { catalogue } from '../../nodes/index.ts';
import { compilePrompt, NodeRegistry, type ApiPrompt } from '../../server/engine/index.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { imageFrom } from '../support/images.ts';

const solid = (n: number, w: number, h: number, v: number) => imageFrom(n, 3, h, w, () => v / 255);

describe('Compare Images node', () => {
  const { env, cleanup } = tempEnv();
  afterAll(cleanup);

  it('writes A and B to temp, marked as a pair with their labels', async () => {
    const ctx = fakeContext(env);
    const out = await runNode(CompareImages, { image_a: solid(1, 40, 30, 20), image_b: solid(1, 80, 60, 220), label_a: ' input ', label_b: 'restored' }, ctx);
    expect(out).toEqual({});
    expect(ctx.files.map((f) => [f.folder, f.compare, f.label, f.width, f.height])).toEqual([
      ['temp', 'a', 'input', 40, 30],
      ['temp', 'b', 'restored', 80, 60],
    ]);
    // Each file is the image it claims to be: A dark and 40 wide, B light and 80 wide.
    const [a, b] = await Promise.all(ctx.files.map((f) => sharp(fs.readFileSync(resolveInside(env.dirs, 'temp', f.filename))).raw().toBuffer({ resolveWithObject: true })));
    expect([a!.info.width, a!.data[0]]).toEqual([40, 20]);
    expect([b!.info.width, b!.data[0]]).toEqual([80, 220]);
    expect(ctx.progressCalls).toEqual([[1, 2], [2, 2]]);
    expect(ctx.warnings).toEqual([]);
  });

  it('labels empty widgets A and B and compares the first image of a batch, saying so', async () => {
    const ctx = fakeContext(env);
    await runNode(CompareImages, { image_a: solid(3, 8, 8, 10), image_b: solid(1, 8, 8, 200), label_a: '', label_b: '  ' }, ctx);
    expect(ctx.files.map((f) => f.label)).toEqual(['A', 'B']);
    expect(ctx.files).toHaveLength(2);
    expect(ctx.warnings).toEqual(['image_a is a batch of 3: only the first image is compared']);
  });

  it('is an output node that needs both images', () => {
    expect(catalogue).toContain(CompareImages);
    const prompt: ApiPrompt = {
      '1': { class_type: 'LoadImage', inputs: { image: 'chelsea.png' } },
      '2': { class_type: 'CompareImages', inputs: { image_a: ['1', 0], label_a: 'x', label_b: '' } },
    };
    const registry = new NodeRegistry(catalogue);
    const compiled = compilePrompt(prompt, registry, env);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.errors.some((e) => e.node_id === '2' && e.input === 'image_b')).toBe(true);
    expect(CompareImages.output).toBe(true);
  });
});
