import { afterAll, describe, expect, it } from 'vitest';
import { isSocketType } from '../../nodes/api/sockets.ts';
import { checkWidgetValue, SEED_MAX } from '../../nodes/api/widgets.ts';
import { catalogue } from '../../nodes/index.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { primitiveNodes } from '../../nodes/primitive/primitives.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

describe('catalogue', () => {
  it('lists every node once, in menu order', () => {
    expect(catalogue.map((n) => n.id)).toEqual([
      'LoadImage', 'LoadImageFolder', 'SaveImage', 'PreviewImage', 'ImageResize', 'ImageCrop', 'DegradeRealESRGAN',
      'DegradeBlur', 'DegradeResize', 'DegradeNoise', 'DegradeJPEG', 'DegradeSinc', 'DegradeUnsharpMask',
      'TileImage', 'MergeTiles', 'LoadUpscaleModel', 'UpscaleImage',
      'LoadSupirModel', 'SupirResize', 'SupirStage1', 'TextEncodeSDXL', 'CaptionVLM', 'SupirEncode', 'SupirSample', 'SupirDecode', 'ColourFix',
      'Sweep', 'ImageGrid', 'ImageMetrics', 'CompareImages',
      'PrimitiveSeed', 'PrimitiveInt', 'PrimitiveFloat', 'PrimitiveText',
    ]);
  });

  it('uses only known socket types and widget defaults that pass their own checks', () => {
    const { env, cleanup } = tempEnv();
    // The default upscale model must be one the library offers.
    env.models = createModelLibrary(env.dirs);
    try {
      for (const node of catalogue) {
        for (const type of [...Object.values(node.outputs), ...Object.values(node.inputs).map((i) => i.type)]) {
          expect(isSocketType(type), `${node.id} ${type}`).toBe(true);
        }
        for (const [name, spec] of Object.entries(node.widgets)) {
          // LoadImage's default is '' on purpose: nothing is chosen until the user picks a file.
          if (node.id === 'LoadImage') continue;
          expect(checkWidgetValue(spec, spec.default, env), `${node.id}.${name}`).toBeUndefined();
        }
        expect(node.description.length, node.id).toBeGreaterThan(0);
      }
    } finally {
      cleanup();
    }
  });
});

describe('primitives', () => {
  const { env, cleanup } = tempEnv();
  afterAll(cleanup);
  const byId = (id: string) => primitiveNodes.find((n) => n.id === id)!;

  it('pass their widget value to their output', async () => {
    const ctx = fakeContext(env);
    expect(await runNode(byId('PrimitiveSeed'), { seed: SEED_MAX }, ctx)).toEqual({ seed: SEED_MAX });
    expect(await runNode(byId('PrimitiveInt'), { value: -7 }, ctx)).toEqual({ value: -7 });
    expect(await runNode(byId('PrimitiveFloat'), { value: 0.25 }, ctx)).toEqual({ value: 0.25 });
    expect(await runNode(byId('PrimitiveText'), { value: 'a\nb' }, ctx)).toEqual({ value: 'a\nb' });
  });

  it('declare the output types that feed widgets of the same kind', () => {
    expect(primitiveNodes.map((n) => [n.id, Object.values(n.outputs)[0], n.category])).toEqual([
      ['PrimitiveSeed', 'INT', 'primitive'],
      ['PrimitiveInt', 'INT', 'primitive'],
      ['PrimitiveFloat', 'FLOAT', 'primitive'],
      ['PrimitiveText', 'STRING', 'primitive'],
    ]);
    const int = byId('PrimitiveInt').widgets.value!;
    expect(checkWidgetValue(int, 2 ** 31 - 1, env)).toBeUndefined();
    expect(checkWidgetValue(int, 2 ** 31, env)).toMatch(/out of range/);
    expect(checkWidgetValue(int, -(2 ** 31), env)).toBeUndefined();
  });
});
