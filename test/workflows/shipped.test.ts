import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runWorkflowFile } from '../../server/cli/run.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { GOLDEN_DIR } from '../support/golden.ts';

const DIR = path.resolve(import.meta.dirname, '../../workflows');
const shipped = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));
const usesSupir = (file: string): boolean => fs.readFileSync(path.join(DIR, file), 'utf8').includes('"LoadSupirModel"');
/**
 * Overrides that keep a workflow's CI run short while the file keeps what a person would run:
 * compare-samplers' sweep samples six SUPIR branches, so CI crops 64x64 (not 128x128) and takes
 * 4 steps (not 8): about 10 s instead of 40 on two cores.
 */
const FAST: Record<string, string[]> = { 'compare-samplers.json': ['2.width=64', '2.height=64', '9.steps=4'] };

describe('shipped workflows', () => {
  /**
   * SUPIR workflows run on the tiny pack converted from the golden weights (text encoders narrowed
   * to fit the tiny UNet): the outputs are not pretty, but every node runs its real code path.
   */
  let tinyPack = '';
  beforeAll(async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-wf-pack-'));
    tinyPack = path.join(tmp, 'supir-tiny');
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, tmp, { fitText: true })), out: tinyPack, ...TINY_COMPILE_OPTIONS });
  }, 120_000);

  it('include the default, the SUPIR restoration and its tiled variant', () => {
    expect(shipped).toEqual(expect.arrayContaining(['restore-esrgan.json', 'supir-restore.json', 'supir-tiled-large.json', 'resize-basic.json', 'compare-samplers.json', 'compare-esrgan-models.json']));
  });

  for (const file of shipped) {
    it(`${file} runs on a fresh data folder and writes decodable images`, async () => {
      const data = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-wf-'));
      if (usesSupir(file)) fs.cpSync(tinyPack, path.join(data, 'models', 'supir-tiny'), { recursive: true });
      const summary = await runWorkflowFile({ file: path.join(DIR, file), sets: FAST[file] ?? [], json: true, data }, () => undefined, new AbortController().signal);
      expect(summary.error).toBeUndefined();
      expect(summary.status).toBe('success');
      const files = Object.values(summary.outputs).flat();
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect((await sharp(f).metadata()).width).toBeGreaterThan(0);
      // The sampler comparison sweeps two SupirSample widgets (3 x 2): one sampler run per branch.
      if (file === 'compare-samplers.json') expect(summary.executed.filter((id) => id.startsWith('9:')).sort()).toEqual(['9:0', '9:1', '9:2', '9:3', '9:4', '9:5']);
    }, 120_000);
  }
});
