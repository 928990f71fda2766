import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeEach, describe, expect, it } from 'vitest';
import { defineNode } from '../../nodes/api/define.ts';
import { string } from '../../nodes/api/widgets.ts';
import LoadImageFolder from '../../nodes/image/load-folder.ts';
import { globToRegExp, listBatch } from '../../nodes/image/folder-list.ts';
import { IMAGE_EXTENSIONS } from '../../nodes/image/load.ts';
import ImageResize from '../../nodes/image/resize.ts';
import SaveImage from '../../nodes/image/save.ts';
import PreviewImage from '../../nodes/image/preview.ts';
import Sweep from '../../nodes/compare/sweep.ts';
import { hasSharedOutputs, selectBatchItems } from '../../server/engine/batch.ts';
import { compilePrompt, executeGraph, LruOutputCache, NodeRegistry, type ApiPrompt, type EngineEvent, type PromptResult } from '../../server/engine/index.ts';
import { tempEnv } from '../support/fake-context.ts';

/** Counts its runs: it depends on no image, so a batch must run it once. */
let captionRuns = 0;
const TestCaption = defineNode({
  id: 'TestCaption',
  displayName: 'Test Caption',
  category: 'test',
  description: 'A constant caption.',
  inputs: {},
  widgets: { text: string({ default: 'a scan' }) },
  outputs: { text: 'STRING' },
  execute({ text }) {
    captionRuns++;
    return { text };
  },
});

const registry = new NodeRegistry([LoadImageFolder, ImageResize, SaveImage, PreviewImage, Sweep, TestCaption]);

/** `count` 16x16 PNGs named scan_1.png ... in `inputs/<folder>`, each a different colour. */
async function writeScans(inputs: string, folder: string, count: number, name = (i: number) => `scan_${i}.png`): Promise<void> {
  fs.mkdirSync(path.join(inputs, folder), { recursive: true });
  for (let i = 1; i <= count; i++) {
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: (i * 5) % 256, g: (i * 37) % 256, b: 200 } } }).png().toBuffer();
    fs.writeFileSync(path.join(inputs, folder, name(i)), png);
  }
}

/** Load Images (folder) → Resize (x2) → Save Image named after each source, with a caption file. */
function batchGraph(widgets: Record<string, string | number> = {}, prefix = 'restored/{name}'): ApiPrompt {
  return {
    '1': { class_type: 'LoadImageFolder', inputs: { folder: 'scans', pattern: '*.png', sort: 'name', start: 0, limit: 0, ...widgets } },
    '2': { class_type: 'ImageResize', inputs: { image: ['1', 0], mode: 'scale', scale: 2, method: 'nearest' } },
    '3': { class_type: 'TestCaption', inputs: { text: 'an old photo' } },
    '4': { class_type: 'SaveImage', inputs: { image: ['2', 0], caption: ['3', 0], filename_prefix: prefix } },
  };
}

/** Runs a prompt as a fresh process would (its own empty cache); `onEvent` may stop it. */
async function run(
  env: ReturnType<typeof tempEnv>['env'],
  prompt: ApiPrompt,
  onEvent: (e: EngineEvent, stop: () => void) => void = () => undefined,
  cache = new LruOutputCache(1 << 30),
): Promise<{ result: PromptResult; events: EngineEvent[] }> {
  const compiled = compilePrompt(prompt, registry, env);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
  const abort = new AbortController();
  const events: EngineEvent[] = [];
  const result = await executeGraph({
    promptId: 'batch',
    graph: compiled.graph,
    env,
    cache,
    sink: { emit: (e) => (events.push(e), onEvent(e, () => abort.abort())) },
    signal: abort.signal,
  });
  return { result, events };
}

const savesRun = (events: EngineEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'node_done' && !e.cached && e.node_id.startsWith('4:') ? e.files.map((f) => f.filename) : []));

beforeEach(() => {
  captionRuns = 0;
});

describe('a batch from a folder', () => {
  it('runs 50 images, is stopped midway, and resumed writes every output exactly once', async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 50);
    const first = await run(env, batchGraph(), (e, stop) => {
      if (e.type === 'batch' && e.done === 20) stop();
    });
    expect(first.result.status).toBe('interrupted');
    expect(first.result.batch).toMatchObject({ total: 50, done: 20, resumed: 0, failed: 0 });
    expect(captionRuns).toBe(1);
    const out = path.join(env.dirs.folders.outputs, 'restored');
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.png'))).toHaveLength(20);

    const second = await run(env, batchGraph());
    expect(second.result.status).toBe('success');
    expect(second.result.batch).toMatchObject({ total: 50, done: 30, resumed: 20, failed: 0 });
    // The 20 saved are not run again: only the other 30 are written.
    const written = [...savesRun(first.events), ...savesRun(second.events)];
    expect(written).toHaveLength(50);
    expect(new Set(written).size).toBe(50);
    // Every output is there once, named after its source, complete, with its caption beside it.
    const files = fs.readdirSync(out).sort();
    const expected = Array.from({ length: 50 }, (_, k) => [`scan_${k + 1}.png`, `scan_${k + 1}.txt`]).flat().sort();
    expect(files).toEqual(expected);
    for (let i = 1; i <= 50; i++) {
      const { data, info } = await sharp(path.join(out, `scan_${i}.png`)).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([32, 32]);
      expect([...data.subarray(0, 3)]).toEqual([(i * 5) % 256, (i * 37) % 256, 200]);
      expect(fs.readFileSync(path.join(out, `scan_${i}.txt`), 'utf8')).toBe('an old photo');
    }
    // The history of the run lists all 50 outputs, the resumed ones included.
    const outputs = Object.entries(second.result.outputs).filter(([id]) => id.startsWith('4:'));
    expect(outputs).toHaveLength(50);
    expect(second.result.batch!.items.every((i) => i.files.length === 1)).toBe(true);

    // A third run finds everything done and runs nothing.
    const third = await run(env, batchGraph());
    expect(third.result.status).toBe('success');
    expect(third.result.executed).toEqual([]);
    expect(third.result.batch).toMatchObject({ total: 50, done: 0, resumed: 50 });
    expect(fs.readdirSync(out)).toHaveLength(100);
  }, 60_000);

  it("runs one image's share of a batch (a scale-out job): its branch and the nodes it needs, numbered as in the whole batch", async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 4);
    const graph = compilePrompt(batchGraph(), registry, env);
    if (!graph.ok) throw new Error(JSON.stringify(graph.errors));
    const share = selectBatchItems(graph.graph, new Set([2]), false);
    expect(share.outputs).toEqual(['4:2']);
    expect(share.order).toEqual(expect.arrayContaining(['1:2', '2:2', '3', '4:2']));
    expect(share.order).toHaveLength(4);
    expect(share.batch!.items).toHaveLength(4);
    expect(hasSharedOutputs(graph.graph)).toBe(false);
    const events: EngineEvent[] = [];
    const result = await executeGraph({ promptId: 'share', graph: share, env, cache: new LruOutputCache(1 << 30), sink: { emit: (e) => events.push(e) }, signal: new AbortController().signal });
    expect(result.status).toBe('success');
    expect(result.batch!.items.map((i) => i.status)).toEqual(['not run', 'not run', 'done', 'not run']);
    expect(fs.readdirSync(path.join(env.dirs.folders.outputs, 'restored')).sort()).toEqual(['scan_3.png', 'scan_3.txt']);
    expect(captionRuns).toBe(1);
  });

  it('sends per-image progress with an estimate of the time left', async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 5);
    const { events } = await run(env, batchGraph());
    const batch = events.filter((e): e is Extract<EngineEvent, { type: 'batch' }> => e.type === 'batch');
    expect(batch[0]).toMatchObject({ total: 5, done: 0, running: null });
    expect(batch.some((e) => e.running === 'scan_3.png')).toBe(true);
    expect(batch.filter((e) => e.done > 0 && e.done < 5).every((e) => typeof e.eta_ms === 'number')).toBe(true);
    expect(batch.at(-1)).toMatchObject({ total: 5, done: 5, running: null });
    // Branch copies carry the source file as their caption.
    const saved = events.find((e) => e.type === 'node_done' && e.node_id === '4:2');
    expect(saved).toMatchObject({ branch: { of: '4', index: 2, label: 'scan_3.png' } });
  });

  it('names files with {name} and {index}, and picks files by glob, sort, start and limit', async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 12);
    fs.writeFileSync(path.join(env.dirs.folders.inputs, 'scans', 'notes.txt'), 'not an image');
    const { result } = await run(env, batchGraph({ start: 2, limit: 3 }, 'set/{index}-{name}'));
    expect(result.status).toBe('success');
    // Natural order: scan_1, scan_2, scan_3, ... scan_10 (not scan_1, scan_10, scan_11, scan_2).
    expect(fs.readdirSync(path.join(env.dirs.folders.outputs, 'set')).filter((f) => f.endsWith('.png')).sort()).toEqual(['00003-scan_3.png', '00004-scan_4.png', '00005-scan_5.png']);

    const list = (q: Partial<{ folder: string; pattern: string; sort: string; start: number; limit: number }>): string[] | string => {
      const got = listBatch(env.dirs, { folder: 'scans', pattern: '*', sort: 'name', start: 0, limit: 0, ...q }, IMAGE_EXTENSIONS);
      return 'reason' in got ? `${got.input}: ${got.reason}` : got.entries.map((e) => e.source);
    };
    expect(list({ pattern: 'scan_1?.PNG' })).toEqual(['scan_10.png', 'scan_11.png', 'scan_12.png']);
    expect(list({ pattern: 'scan_{2,7}.png' })).toEqual(['scan_2.png', 'scan_7.png']);
    expect(list({ pattern: 'scan_[3-5].png', sort: 'name-desc' })).toEqual(['scan_5.png', 'scan_4.png', 'scan_3.png']);
    expect(list({ limit: 2, start: 10 })).toEqual(['scan_11.png', 'scan_12.png']);
    const now = Date.now() / 1000;
    for (let i = 1; i <= 12; i++) fs.utimesSync(path.join(env.dirs.folders.inputs, 'scans', `scan_${i}.png`), now, now - i * 60);
    expect(list({ sort: 'modified', limit: 3 })).toEqual(['scan_12.png', 'scan_11.png', 'scan_10.png']);
    expect(list({ sort: 'modified-desc', limit: 2 })).toEqual(['scan_1.png', 'scan_2.png']);
    fs.writeFileSync(path.join(env.dirs.folders.inputs, 'scans', 'big.png'), await sharp({ create: { width: 300, height: 300, channels: 3, background: '#123456' } }).png({ compressionLevel: 0 }).toBuffer());
    expect(list({ sort: 'size-desc', limit: 1 })).toEqual(['big.png']);
    // Subfolders only with a pattern that says so; {name} keeps the subfolder.
    await writeScans(env.dirs.folders.inputs, 'scans/box 2', 2, (i) => `page_${i}.jpg`.replace('jpg', 'png'));
    expect(list({ pattern: '**/page_*.png' })).toEqual(['box 2/page_1.png', 'box 2/page_2.png']);
    expect(list({ pattern: 'page_*.png' })).toMatch(/^pattern: no image in "scans" matches "page_\*.png"/);
    expect(list({ start: 99 })).toMatch(/^start: start 99 is past the last of the 13 matching images/);
    expect(list({ folder: '../outside' })).toMatch(/^folder: folder "..\/outside" must be a relative path/);
    expect(list({ folder: 'nope' })).toMatch(/^folder: "nope" does not exist in the inputs folder/);
    // A symlink that leads out of the inputs folder is refused; links inside the folder are not followed.
    fs.symlinkSync(os.tmpdir(), path.join(env.dirs.folders.inputs, 'escape'));
    expect(list({ folder: 'escape' })).toMatch(/^folder: folder "escape" leads outside the inputs folder/);
    fs.symlinkSync(os.tmpdir(), path.join(env.dirs.folders.inputs, 'scans', 'tmp-link'));
    fs.symlinkSync(path.join(env.dirs.folders.inputs, 'scans', 'scan_1.png'), path.join(env.dirs.folders.inputs, 'scans', 'linked.png'));
    expect(list({ pattern: '**/*' })).not.toContain('linked.png');
    expect((list({ pattern: '**/*' }) as string[]).some((f) => f.startsWith('tmp-link'))).toBe(false);
    expect(globToRegExp('**/*.tif').test('a/b/c.TIF')).toBe(true);
  });

  it('refuses a folder with no matching image before anything runs, naming the node and the input', () => {
    const { env } = tempEnv();
    fs.mkdirSync(path.join(env.dirs.folders.inputs, 'empty'));
    const compiled = compilePrompt(batchGraph({ folder: 'empty', pattern: '*.tif' }), registry, env);
    expect(compiled.ok).toBe(false);
    if (compiled.ok) return;
    expect(compiled.errors).toEqual([
      expect.objectContaining({ node_id: '1', node_type: 'LoadImageFolder', input: 'pattern', message: expect.stringMatching(/^Load Images \(folder\): pattern: no image in "empty" matches "\*\.tif"/) }),
    ]);
    // A folder outside the inputs folder is refused the same way.
    const outside = compilePrompt(batchGraph({ folder: '../../etc' }), registry, env);
    expect(!outside.ok && outside.errors[0]).toMatchObject({ node_id: '1', input: 'folder', message: expect.stringMatching(/must be a relative path without/) });
    // A Sweep and a batch in one graph are refused, not half run.
    const swept = compilePrompt({ ...batchGraph(), '9': { class_type: 'Sweep', inputs: { target: '2', x_widget: 'scale', x_values: '1,2' } } }, registry, env);
    expect(!swept.ok && swept.errors[0]).toMatchObject({ node_id: '9', message: expect.stringMatching(/a Sweep and a batch/) });
  });

  it('resumes past previews, and writes a deleted output again even when the server cached it', async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 4);
    const prompt: ApiPrompt = { ...batchGraph(), '5': { class_type: 'PreviewImage', inputs: { image: ['2', 0] } } };
    const cache = new LruOutputCache(1 << 30);
    expect((await run(env, prompt, undefined, cache)).result.batch).toMatchObject({ done: 4, resumed: 0 });
    // A preview keeps nothing: it does not stop the images from counting as done.
    const again = await run(env, prompt, undefined, cache);
    expect(again.result.batch).toMatchObject({ done: 0, resumed: 4 });
    expect(again.result.executed).toEqual([]);
    fs.rmSync(path.join(env.dirs.folders.outputs, 'restored', 'scan_2.png'));
    const third = await run(env, prompt, undefined, cache);
    expect(third.result.batch).toMatchObject({ done: 1, resumed: 3 });
    // Only the Save of that image ran; its resize came from the cache.
    expect(third.result.executed).toEqual(['4:1']);
    expect(fs.existsSync(path.join(env.dirs.folders.outputs, 'restored', 'scan_2.png'))).toBe(true);
  });

  it('reports a bad image by name and saves all the others', async () => {
    const { env } = tempEnv();
    await writeScans(env.dirs.folders.inputs, 'scans', 6);
    fs.writeFileSync(path.join(env.dirs.folders.inputs, 'scans', 'scan_4.png'), 'this is not a PNG');
    const { result, events } = await run(env, batchGraph());
    expect(result.status).toBe('error');
    expect(result.batch).toMatchObject({ total: 6, done: 5, failed: 1 });
    expect(result.batch!.items[3]).toMatchObject({ source: 'scan_4.png', status: 'failed', error: expect.stringMatching(/Load Images \(folder\) \[scan_4\.png\] \(#1:3\) input 'folder': "scans\/scan_4\.png" is not a readable image/) });
    expect(result.error).toMatchObject({ node_id: '1:3', code: 'BAD_IMAGE' });
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
    const saved = fs.readdirSync(path.join(env.dirs.folders.outputs, 'restored')).filter((f) => f.endsWith('.png')).sort();
    expect(saved).toEqual(['scan_1.png', 'scan_2.png', 'scan_3.png', 'scan_5.png', 'scan_6.png']);
    // Fixed and run again: only the image that failed runs.
    await writeScans(env.dirs.folders.inputs, 'scans', 4);
    const again = await run(env, batchGraph());
    expect(again.result.batch).toMatchObject({ done: 1, resumed: 5, failed: 0 });
  });
});
