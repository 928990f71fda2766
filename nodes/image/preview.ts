import { randomUUID } from 'node:crypto';
import { resolveInside, writeFileAtomic } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import { encodeImage } from './codec.ts';

export default defineNode({
  id: 'PreviewImage',
  displayName: 'Preview Image',
  category: 'image',
  description: 'Shows the images on the node without keeping them: they go to the temp folder, which is emptied.',
  output: true,
  inputs: { image: { type: 'IMAGE' } },
  widgets: {},
  outputs: {},
  async execute({ image }, ctx) {
    for (let index = 0; index < image.n; index++) {
      ctx.checkAborted();
      // Temp files are thrown away, so a fast zlib level beats a small file; no metadata either,
      // as nothing reopens a workflow from a preview.
      const bytes = await encodeImage(image, 'png', { index, compressionLevel: 1 });
      // A UUID rather than a counter: no directory scan, and concurrent previews cannot collide.
      const filename = `preview_${randomUUID()}.png`;
      await writeFileAtomic(resolveInside(ctx.env.dirs, 'temp', filename), bytes);
      ctx.addFile({ folder: 'temp', filename, kind: 'image', width: image.w, height: image.h });
      ctx.progress(index + 1, image.n);
    }
    return {};
  },
});
