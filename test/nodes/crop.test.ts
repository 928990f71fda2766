import { afterAll, describe, expect, it } from 'vitest';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import ImageCrop from '../../nodes/image/crop.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { at, imageFrom } from '../support/images.ts';

const { env, cleanup } = tempEnv();
afterAll(cleanup);

// Every value encodes where it came from, so a wrong offset shows up as a wrong number.
const image = imageFrom(2, 3, 10, 12, (n, c, y, x) => n * 1000 + c * 100 + y * 10 + x * 0.1);

async function crop(args: { x: number; y: number; width: number; height: number }): Promise<ImageTensor> {
  return (await runNode(ImageCrop, { image, ...args }, fakeContext(env))).image as ImageTensor;
}

describe('ImageCrop', () => {
  it('cuts the rectangle out of every item of the batch', async () => {
    const out = await crop({ x: 3, y: 2, width: 5, height: 4 });
    expect([out.n, out.c, out.h, out.w]).toEqual([2, 3, 4, 5]);
    for (let n = 0; n < 2; n++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 4; y++) {
          for (let x = 0; x < 5; x++) expect(at(out, n, c, y, x)).toBe(at(image, n, c, y + 2, x + 3));
        }
      }
    }
  });

  it('accepts a rectangle that touches the right and bottom edges', async () => {
    const out = await crop({ x: 11, y: 9, width: 1, height: 1 });
    expect(Array.from(out.data)).toEqual([at(image, 0, 0, 9, 11), at(image, 0, 1, 9, 11), at(image, 0, 2, 9, 11),
      at(image, 1, 0, 9, 11), at(image, 1, 1, 9, 11), at(image, 1, 2, 9, 11)]);
  });

  it('names the widget when the rectangle leaves the image', async () => {
    await expect(crop({ x: 12, y: 0, width: 1, height: 1 })).rejects.toMatchObject({ input: 'x', code: 'BAD_INPUT' });
    await expect(crop({ x: 0, y: 10, width: 1, height: 1 })).rejects.toMatchObject({ input: 'y' });
    await expect(crop({ x: 4, y: 0, width: 9, height: 1 })).rejects.toMatchObject({ input: 'width' });
    await expect(crop({ x: 0, y: 4, width: 1, height: 7 })).rejects.toMatchObject({ input: 'height' });
  });
});
