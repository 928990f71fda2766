import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { createImage } from '../api/tensor.ts';
import { int } from '../api/widgets.ts';

export default defineNode({
  id: 'ImageCrop',
  displayName: 'Crop Image',
  category: 'image',
  description: 'Cuts the rectangle at (x, y) of the given size out of every image of the batch.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    x: int({ default: 0, min: 0, max: 16384, description: 'Left edge, in pixels from the left.' }),
    y: int({ default: 0, min: 0, max: 16384, description: 'Top edge, in pixels from the top.' }),
    width: int({ default: 512, min: 1, max: 16384 }),
    height: int({ default: 512, min: 1, max: 16384 }),
  },
  outputs: { image: 'IMAGE' },
  execute({ image, x, y, width, height }) {
    // Clamping silently would hand the next node a size nobody asked for; the widget at fault
    // is named instead (the start when it is already outside, else the size that overruns).
    if (x >= image.w) throw new InputError('x', `${x} is outside the image, which is ${image.w} pixels wide`);
    if (y >= image.h) throw new InputError('y', `${y} is outside the image, which is ${image.h} pixels high`);
    if (x + width > image.w) {
      throw new InputError('width', `x ${x} + width ${width} passes the right edge of the ${image.w}-pixel-wide image`);
    }
    if (y + height > image.h) {
      throw new InputError('height', `y ${y} + height ${height} passes the bottom edge of the ${image.h}-pixel-high image`);
    }
    if (x === 0 && y === 0 && width === image.w && height === image.h) return { image };
    const out = createImage(image.n, image.c, height, width);
    const planes = image.n * image.c;
    for (let p = 0; p < planes; p++) {
      const src = p * image.h * image.w;
      const dst = p * height * width;
      for (let row = 0; row < height; row++) {
        const from = src + (y + row) * image.w + x;
        out.data.set(image.data.subarray(from, from + width), dst + row * width);
      }
    }
    return { image: out };
  },
});
