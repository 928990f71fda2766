import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runWorkflowFile, type RunSummary } from '../../server/cli/run.ts';
import { parseWorkflow, WORKFLOW_VERSION } from '../../server/engine/index.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { GOLDEN_DIR } from '../support/golden.ts';

const DIR = path.resolve(import.meta.dirname, '../../workflows');
const shipped = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));
const usesSupir = (file: string): boolean => fs.readFileSync(path.resolve(DIR, file), 'utf8').includes('"LoadSupirModel"');
/**
 * Overrides that keep a workflow's CI run short while the file keeps what a person would run
 * (the SUPIR-v0Q pack, x2 to at least 1024 px, 30-50 steps): CI runs the tiny pack on the sample
 * photo shrunk to 128x96 (`small.png`) at its own size, with a few steps and tiles to match.
 */
const TINY_SUPIR = ['2.pack=supir-tiny', '4.upscale=1', '4.min_size=64', '1.image=small.png'];
const FAST: Record<string, string[]> = {
  'supir-restore.json': [...TINY_SUPIR, '8.steps=8'],
  'supir-tiled-large.json': [...TINY_SUPIR, '8.steps=3', '8.tile_size=32', '8.tile_stride=16', '5.tile_size=64', '6.tile_size=64', '9.tile_size=64'],
  'compare-samplers.json': ['4.pack=supir-tiny', '2.width=64', '2.height=64', '5.min_size=64', '9.steps=4'],
  // MAXIM runs one 128 px tile in seconds on a CPU: the 128x96 photo is one tile per model.
  'restore-photo.json': ['1.image=small.png'],
};
const REPO = path.resolve(import.meta.dirname, '../..');
/** Version-1 copies of shipped workflows, as they were shipped before the MODEL socket type was split. */
const V1 = path.resolve(import.meta.dirname, 'fixtures');
const v1Files = fs.readdirSync(V1).filter((f) => f.endsWith('.v1.json'));

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).raw().toBuffer();
}

describe('shipped workflows', () => {
  /**
   * SUPIR workflows run on the tiny pack converted from the golden weights (text encoders narrowed
   * to fit the tiny UNet): the outputs are not pretty, but every node runs its real code path.
   */
  let tinyPack = '';
  /** Each shipped workflow's run, for the version-1 copies to be compared with. */
  const runs = new Map<string, RunSummary>();

  async function run(file: string): Promise<RunSummary> {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-wf-'));
    // Overrides are for the shipped files; fixtures run as they are.
    const sets = path.dirname(file) === DIR ? (FAST[path.basename(file)] ?? []) : [];
    if (usesSupir(file)) fs.cpSync(tinyPack, path.join(data, 'models', 'supir-tiny'), { recursive: true });
    if (usesSupir(file) || sets.includes('1.image=small.png')) {
      fs.mkdirSync(path.join(data, 'inputs'), { recursive: true });
      fs.writeFileSync(path.join(data, 'inputs', 'small.png'), smallPhoto);
    }
    return runWorkflowFile({ file, sets, json: true, data }, () => undefined, new AbortController().signal);
  }
  let smallPhoto: Buffer;
  beforeAll(async () => {
    smallPhoto = await sharp(path.resolve(REPO, 'assets/inputs/chelsea.png')).resize(128, 96, { kernel: 'cubic' }).png().toBuffer();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-wf-pack-'));
    tinyPack = path.join(tmp, 'supir-tiny');
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, tmp, { fitText: true })), out: tinyPack, ...TINY_COMPILE_OPTIONS });
  }, 120_000);

  it('include the default, the SUPIR restoration and its tiled variant', () => {
    expect(shipped).toEqual(expect.arrayContaining(['restore-photo.json', 'restore-esrgan.json', 'supir-restore.json', 'supir-tiled-large.json', 'resize-basic.json', 'compare-samplers.json', 'compare-esrgan-models.json']));
  });

  it('are made for people: no test-only nodes, packs or sizes (CI reduces them with --set overrides)', () => {
    for (const file of shipped) {
      const text = fs.readFileSync(path.join(DIR, file), 'utf8');
      expect(text, file).not.toMatch(/supir-tiny|tiny pack|keeps CI|\bCI\b/i);
      const wf = JSON.parse(text) as { nodes: Array<{ type: string; widgets_values: Record<string, unknown> }> };
      for (const n of wf.nodes.filter((node) => node.type === 'LoadSupirModel')) expect(n.widgets_values.pack, file).toBe('SUPIR-v0Q');
      for (const n of wf.nodes.filter((node) => node.type === 'SupirResize')) expect(n.widgets_values.min_size, file).toBeGreaterThanOrEqual(512);
    }
  });

  for (const file of shipped) {
    it(`${file} runs on a fresh data folder and writes decodable images`, async () => {
      const raw = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { version: number };
      expect(raw.version, 'shipped files are at the current format version').toBe(WORKFLOW_VERSION);
      const summary = await run(path.join(DIR, file));
      runs.set(file, summary);
      expect(summary.error).toBeUndefined();
      expect(summary.status).toBe('success');
      const files = Object.values(summary.outputs).flat();
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect((await sharp(f).metadata()).width).toBeGreaterThan(0);
      // The sampler comparison sweeps two SupirSample widgets (3 x 2): one sampler run per branch.
      if (file === 'compare-samplers.json') expect(summary.executed.filter((id) => id.startsWith('9:')).sort()).toEqual(['9:0', '9:1', '9:2', '9:3', '9:4', '9:5']);
    }, 120_000);
  }

  for (const file of v1Files) {
    // The version-2 file it must become: a shipped workflow, or a test fixture (the tiny-pack SUPIR restore).
    const v2Name = file.replace('.v1.json', '.json');
    const v2 = fs.existsSync(path.join(DIR, v2Name)) ? path.join(DIR, v2Name) : path.join(V1, v2Name);
    it(`${file} (version 1, MODEL links) loads as ${path.relative(path.resolve(DIR, '..'), v2)} and writes the same images`, async () => {
      const raw = fs.readFileSync(path.join(V1, file), 'utf8');
      expect(JSON.parse(raw)).toMatchObject({ version: 1 });
      expect(raw).toContain('"MODEL"');
      const migrated = parseWorkflow(JSON.parse(raw));
      expect(migrated).toEqual(parseWorkflow(JSON.parse(fs.readFileSync(v2, 'utf8'))));
      expect(JSON.stringify(migrated)).not.toContain('"MODEL"');
      const before = runs.get(v2Name) ?? (await run(v2));
      expect(before.status).toBe('success');
      const summary = await run(path.join(V1, file));
      expect(summary.error).toBeUndefined();
      expect(summary.status).toBe('success');
      const files = Object.values(summary.outputs).flat();
      const expected = Object.values(before.outputs).flat();
      expect(files).toHaveLength(expected.length);
      for (const [i, f] of files.entries()) expect((await pixels(f)).equals(await pixels(expected[i]!)), f).toBe(true);
    }, 120_000);
  }
});
