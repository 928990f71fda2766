import fs from 'node:fs';
import { MAX_BATCH_ITEMS } from '../api/batch.ts';
import { resolveInside } from '../api/data-dirs.ts';
import { defineNode } from '../api/define.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { combo, int, string } from '../api/widgets.ts';
import { decodeImage } from './codec.ts';
import { BATCH_SORTS, listBatch } from './folder-list.ts';
import { hashFile, IMAGE_EXTENSIONS } from './load.ts';

/** The file a batch copy of the node reads: the literal the engine gives each copy. */
const fileOf = (args: object): string => {
  const file = (args as { file?: unknown }).file;
  return typeof file === 'string' ? file : '';
};

/**
 * A folder of images as a batch: the engine runs the graph once per image (server/engine/batch.ts),
 * each image its own branch with its own cache entries, like a sweep; nodes that do not depend
 * on the image run once. Save Image's `{name}` and `{index}` name each output after its source.
 */
export default defineNode({
  id: 'LoadImageFolder',
  displayName: 'Load Images (folder)',
  category: 'image',
  description:
    'Runs the graph once per image of a folder in the inputs folder (a glob picks the files). Name outputs after their sources with {name} in Save Image\'s prefix: a batch run again skips the images already saved.',
  inputs: {},
  widgets: {
    folder: string({ default: '', maxLength: 1024, description: 'A folder inside the inputs folder, e.g. "scans/box 1"; empty: the inputs folder itself.' }),
    pattern: string({ default: '*', maxLength: 1000, description: 'A glob: *.png, scan_*.{jpg,tif}, **/*.png (subfolders too). Case is ignored; only images count.' }),
    sort: combo({ options: BATCH_SORTS, default: 'name', description: 'name: natural order (scan2 before scan10); modified: oldest first; size: smallest first; -desc: reversed.' }),
    start: int({ default: 0, min: 0, max: 1_000_000, step: 1, description: 'Skips this many images of the sorted list.' }),
    limit: int({ default: 0, min: 0, max: MAX_BATCH_ITEMS, step: 1, description: `Runs at most this many images; 0: all (at most ${MAX_BATCH_ITEMS}).` }),
  },
  outputs: { image: 'IMAGE', name: 'STRING' },
  batch: {
    list: (args, env) => listBatch(env.dirs, args, IMAGE_EXTENSIONS),
  },
  async fingerprint(args, env) {
    // An unreadable file fails its own item when it runs, not the fingerprints of the whole batch.
    try {
      return await hashFile(resolveInside(env.dirs, 'inputs', fileOf(args)));
    } catch (err) {
      return `unreadable: ${(err as Error).message}`;
    }
  },
  async execute(args, ctx) {
    const file = ctx.batch?.file ?? fileOf(args);
    if (!file) throw new StudioError('NODE_FAILED', 'the batch was not expanded into one branch per image');
    const shown = JSON.stringify(file);
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(resolveInside(ctx.env.dirs, 'inputs', file));
    } catch (err) {
      const reason = err instanceof StudioError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      throw new InputError('folder', `cannot read ${shown}: ${reason}`, 'NOT_FOUND');
    }
    try {
      return { image: await decodeImage(bytes, ctx.env.limits, shown), name: ctx.batch?.name ?? file };
    } catch (err) {
      if (err instanceof StudioError) throw new InputError('folder', err.message, err.code);
      throw err;
    }
  },
});
