/**
 * The README's restoration figures, made by the product: runs bench/restore-quality.ts (the real
 * nodes on the shared test photos; it prints the same tables as the bench) and lays its images
 * out with the Grid node's code (nodes/compare/grid.ts), written as PNG to docs/images/:
 * - restore-default-grid.png: each photo's degraded 128 px crop through the default chain and
 *   denoise → deblur → ESRGAN, beside the clean crop, the degraded one and ESRGAN alone (all x4);
 * - restore-models.png: each MAXIM model on its matched degradation (the first photo's 128 px
 *   crop, at its size), beside the plain filters.
 *
 * `npx tsx tools/restore-figures.ts [--out docs/images]` (~6-10 min on the 2-core machine).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Branch } from '../nodes/api/branch.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { buildGrid } from '../nodes/compare/grid.ts';
import sharp from 'sharp';
import { imageToHwcUint8 } from '../nodes/image/codec.ts';
import { resample } from '../nodes/image/resize.ts';
import { measureRestoreQuality, type ChainName } from '../bench/restore-quality.ts';
import { FILTERS, type FilterName } from '../bench/restore-cases.ts';

/** The chain the default workflow (workflows/restore-photo.json) runs. */
export const DEFAULT_CHAIN: ChainName = 'denoise → deblur → ESRGAN x4';

const { values } = parseArgs({ options: { out: { type: 'string', default: path.resolve(import.meta.dirname, '../docs/images') } } });
const out = values.out!;

type Cell = { col: string; row: string; image: ImageTensor };

/** Cells as sweep branches: the Grid node labels columns and rows by these values. */
function branches(cells: Cell[], colTitle: string, rowTitle: string): Array<Branch<ImageTensor>> {
  const cols = [...new Set(cells.map((c) => c.col))];
  const rows = [...new Set(cells.map((c) => c.row))];
  return cells.map((c) => ({
    value: c.image,
    label: `${c.col}, ${c.row}`,
    coords: [
      { axis: 0, node: 'x', title: colTitle, widget: colTitle, value: c.col, index: cols.indexOf(c.col) },
      { axis: 1, node: 'y', title: rowTitle, widget: rowTitle, value: c.row, index: rows.indexOf(c.row) },
    ],
  }));
}

async function save(name: string, cells: Cell[], colTitle: string, rowTitle: string, maxCell: number): Promise<void> {
  const { image } = await buildGrid(branches(cells, colTitle, rowTitle), { maxCell, gap: 6, fontSize: 16, background: 'white' });
  const file = path.join(out, name);
  // 256-colour PNG (libimagequant): a third of the bytes of a full-colour one for these noisy crops.
  await sharp(imageToHwcUint8(image), { raw: { width: image.w, height: image.h, channels: 3 } }).png({ palette: true, colours: 256, effort: 10 }).toFile(file);
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)} (${image.w}x${image.h}, ${(fs.statSync(file).size / 1024).toFixed(0)} KiB)\n`);
}

const result = await measureRestoreQuality((line) => process.stdout.write(`${line}\n`));
fs.mkdirSync(out, { recursive: true });

const x4 = (x: ImageTensor): ImageTensor => resample(x, x.w * 4, x.h * 4, 'bicubic');
const grid: Cell[] = result.chains
  .filter((r) => r.at === 'input')
  .flatMap((r) => {
    const row = `${r.photo.replace(/\.\w+$/, '')}, ${/noise σ\d+/.exec(r.degradation)?.[0] ?? r.degradation}`;
    return [
      { col: 'clean', row, image: x4(r.clean) },
      { col: 'degraded', row, image: r.outputs['bicubic x4']! },
      { col: 'ESRGAN alone', row, image: r.outputs['ESRGAN x4']! },
      { col: 'denoise → ESRGAN', row, image: r.outputs['denoise → ESRGAN x4']! },
      { col: 'default chain', row, image: r.outputs[DEFAULT_CHAIN]! },
    ];
  });
await save('restore-default-grid.png', grid, 'x4 (clean and degraded: bicubic)', 'photo', 256);

const first = result.models[0]?.photo;
const models: Cell[] = result.models
  .filter((r) => r.photo === first)
  .flatMap((r) => {
    const row = `${r.model.replace('maxim-', '')}: ${r.degradation}`;
    return [
      { col: 'clean', row, image: r.clean },
      { col: 'degraded', row, image: r.degraded },
      ...(Object.keys(FILTERS) as FilterName[]).map((f) => ({ col: f, row, image: r.filtered[f] })),
      { col: 'MAXIM model', row, image: r.restored },
    ];
  });
await save('restore-models.png', models, 'method', 'model: degradation', 0);
