import { randomUUID } from 'node:crypto';
import { resolveInside, writeFileAtomic } from '../api/data-dirs.ts';
import type { Branch } from '../api/branch.ts';
import { defineNode } from '../api/define.ts';
import type { TableData } from '../api/file-ref.ts';
import { InputError } from '../api/errors.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { combo, int } from '../api/widgets.ts';
import { cropPlane, grey, laplacianVariance, lumaY, msSsim, noiseSigma, psnr, ssim, toPlanes8, type Plane } from './lib/metrics.ts';
import { fontsAvailable, NO_FONT_HINT, renderTable, toCsv, type FontProbe } from './lib/render.ts';

export const METRIC_COLUMNS = ['psnr_db', 'ssim', 'ms_ssim', 'sharpness', 'noise_sigma'] as const;

const round = (v: number, digits: number): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

/**
 * One row per image of every branch: full-reference scores against `reference` (on the BT.601 Y
 * channel or on RGB, after cropping `border` pixels), and the no-reference sharpness and noise.
 * A first row gives the reference's own sharpness and noise, for scale.
 */
export function metricsTable(branches: Array<Branch<ImageTensor>>, reference: ImageTensor, channel: 'Y' | 'RGB', border: number): TableData {
  const axes: string[] = [];
  for (const b of branches) for (const c of b.coords) if (!axes.includes(c.widget)) axes.push(c.widget);
  const columns = ['image', ...axes, ...METRIC_COLUMNS];
  const channels = (planes: Plane[]): Plane[] => (channel === 'Y' ? [lumaY(planes)] : planes).map((p) => cropPlane(p, border));
  const ref = channels(toPlanes8(reference));
  const refGrey = cropPlane(grey(toPlanes8(reference)), border);
  const rows: TableData['rows'] = [['reference', ...axes.map(() => null), null, null, null, round(laplacianVariance(refGrey), 2), round(noiseSigma(refGrey), 3)]];
  branches.forEach((b, i) => {
    for (let n = 0; n < b.value.n; n++) {
      if (b.value.w !== reference.w || b.value.h !== reference.h) {
        throw new InputError('reference', `is ${reference.w}x${reference.h} but image ${b.label || i + 1} is ${b.value.w}x${b.value.h}: compare images of the same size`);
      }
      const rgb = toPlanes8(b.value, n);
      const img = channels(rgb);
      const g = cropPlane(grey(rgb), border);
      // With axis columns the label would repeat them: the branch number is enough.
      const name = (axes.length > 0 || !b.label ? `#${i + 1}` : b.label) + (b.value.n > 1 ? ` (${n + 1})` : '');
      const axisValues = axes.map((a) => {
        const c = b.coords.find((c) => c.widget === a);
        return c === undefined ? null : typeof c.value === 'boolean' ? String(c.value) : c.value;
      });
      rows.push([name, ...axisValues, round(psnr(ref, img), 4), round(ssim(ref, img), 5), round(msSsim(ref, img), 5), round(laplacianVariance(g), 2), round(noiseSigma(g), 3)]);
    }
  });
  return { columns, rows };
}

export const NO_FONT_TABLE_WARNING = `${NO_FONT_HINT} — the table image is drawn without text (the numbers are in the table and csv outputs)`;

/** The Metrics node; `probe` says whether text can be drawn (tests pass a fake one). */
export function makeMetricsNode(probe: FontProbe = fontsAvailable) {
  return defineNode({
    id: 'ImageMetrics',
    displayName: 'Metrics (PSNR / SSIM)',
    category: 'compare',
    description:
      'Scores every branch against a reference (PSNR, SSIM, MS-SSIM, as scikit-image computes them) and measures sharpness (variance of the Laplacian) and noise (Immerkær sigma). Shows the table on the node and in the history; outputs it as JSON and CSV.',
    output: true,
    inputs: {
      images: { type: 'IMAGE', gather: true, description: 'The images to score: every branch of a sweep, or one image.' },
      reference: { type: 'IMAGE', description: 'The clean image, e.g. the photo before Degrade.' },
    },
    widgets: {
      channel: combo({ options: ['Y', 'RGB'], default: 'Y', description: 'Y: BT.601 luma, the super-resolution papers\u2019 convention; RGB: every channel.' }),
      crop_border: int({ default: 0, min: 0, max: 256, description: 'Pixels left out on every side (papers crop the scale factor).' }),
    },
    outputs: { table: 'STRING', csv: 'STRING' },
    async execute({ images, reference, channel, crop_border }, ctx) {
      const table = metricsTable(images, reference, channel as 'Y' | 'RGB', crop_border);
      const drawText = await probe();
      if (!drawText) ctx.warn(NO_FONT_TABLE_WARNING);
      const { png, width, height } = await renderTable(table, 14, drawText);
      // The rendered table is a temp image like a preview; the numbers travel with its reference.
      const filename = `metrics_${randomUUID()}.png`;
      await writeFileAtomic(resolveInside(ctx.env.dirs, 'temp', filename), png);
      ctx.addFile({ folder: 'temp', filename, kind: 'image', width, height, table });
      return { table: JSON.stringify(table), csv: toCsv(table) };
    },
  });
}

export default makeMetricsNode();
