import { randomUUID } from 'node:crypto';
import { resolveInside, writeFileAtomic } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { string } from '../api/widgets.ts';
import { encodeImage } from '../image/codec.ts';

/** Labels shown when the widgets are left empty. */
export const DEFAULT_LABELS = { a: 'A', b: 'B' } as const;

/**
 * Two images as a pair: both go to the temp folder like a preview, each file marked as side A or
 * B with its label, so the editor draws them under an A/B split on the node and opens the viewer
 * in compare mode with exactly these two on a click.
 */
export default defineNode({
  id: 'CompareImages',
  displayName: 'Compare Images',
  category: 'compare',
  description:
    'Shows two images under an A/B slider on the node (e.g. the input and the restoration, or two branches); a click opens them in the viewer under the slider or side by side with one zoom. ' +
    'Temp files, like Preview Image; of a batch, the first image. B is shown at A\u2019s size.',
  output: true,
  inputs: {
    image_a: { type: 'IMAGE', description: 'Left of the slider.' },
    image_b: { type: 'IMAGE', description: 'Right of the slider.' },
  },
  widgets: {
    label_a: string({ default: '', maxLength: 100, description: 'Caption of A (empty: "A").' }),
    label_b: string({ default: '', maxLength: 100, description: 'Caption of B (empty: "B").' }),
  },
  outputs: {},
  async execute({ image_a, image_b, label_a, label_b }, ctx) {
    const sides: Array<['a' | 'b', ImageTensor, string]> = [
      ['a', image_a, label_a.trim() || DEFAULT_LABELS.a],
      ['b', image_b, label_b.trim() || DEFAULT_LABELS.b],
    ];
    for (const [side, image, label] of sides) {
      if (image.n > 1) ctx.warn(`image_${side} is a batch of ${image.n}: only the first image is compared`);
    }
    for (const [i, [side, image, label]] of sides.entries()) {
      ctx.checkAborted();
      // As Preview Image: a fast zlib level and no metadata, as temp files are thrown away.
      const bytes = await encodeImage(image, 'png', { index: 0, compressionLevel: 1 });
      const filename = `compare_${side}_${randomUUID()}.png`;
      await writeFileAtomic(resolveInside(ctx.env.dirs, 'temp', filename), bytes);
      ctx.addFile({ folder: 'temp', filename, kind: 'image', width: image.w, height: image.h, compare: side, label });
      ctx.progress(i + 1, 2);
    }
    return {};
  },
});
