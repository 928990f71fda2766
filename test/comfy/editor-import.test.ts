import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asciiJson, addPngTextChunks } from '../../nodes/image/png-text.ts';
import { openEditor, type EditorSession } from '../browser/harness.ts';
import { gradient } from '../server/helpers.ts';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');

const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

/** Opens a file with the toolbar's import, discarding the graph on the canvas when asked. */
async function importFile(page: Page, file: string): Promise<void> {
  await page.getByTestId('import-file-input').setInputFiles(file);
  const discard = page.getByTestId('unsaved-discard');
  const report = page.getByTestId('import-report');
  await Promise.race([discard.waitFor().then(() => discard.click()), report.waitFor()]);
  await report.waitFor();
}

describe('the editor opens ComfyUI workflows', () => {
  let s: EditorSession;
  beforeAll(async () => {
    s = await openEditor();
  }, 60_000);
  afterAll(async () => s?.close());

  it('opens the kijai Lightning-style workflow and shows the import report', async () => {
    const { page } = s;
    await importFile(page, path.join(FIXTURES, 'kijai-v2-lightning.json'));
    const text = (await page.getByTestId('import-report').textContent()) ?? '';
    expect(text).toMatch(/ComfyUI workflow \(schema 0\.4\): 18 mapped, 12 translated, \d+ unsupported/);
    expect(text).toMatch(/npx supir-studio convert --supir SUPIR-v0Q_fp16\.safetensors --sdxl juggernautXL_v9Rdphoto2Lightning\.safetensors/);
    expect(text).toMatch(/sampler RestoreDPMPP2MSampler → DPM\+\+ 2M Karras \+ restoration guidance/);
    await s.shot('comfy-import-report');
    await page.getByTestId('import-report-ok').click();
    const types = await hook<string[]>(page, 'return s.workflow().nodes.map((n) => n.type);');
    expect(types).toEqual(expect.arrayContaining(['LoadSupirModel', 'SupirStage1', 'SupirEncode', 'TextEncodeSDXL', 'SupirSample', 'SupirDecode', 'ColourFix', 'CompareImages', 'SaveImage']));
    await page.waitForTimeout(300);
    await s.shot('comfy-import-lightning-graph');

    // And back out for ComfyUI: the API prompt downloads and the same kind of report shows.
    await page.getByTestId('workflow-menu-button').click();
    const download = page.waitForEvent('download');
    await page.getByTestId('menu-export-comfy').click();
    const prompt = JSON.parse(fs.readFileSync((await (await download).path())!, 'utf8')) as Record<string, { class_type: string }>;
    expect(Object.values(prompt).map((n) => n.class_type)).toEqual(expect.arrayContaining(['SUPIR_model_loader_v2', 'SUPIR_sample', 'SUPIR_decode', 'SaveImage']));
    await page.getByTestId('import-report').waitFor();
    expect(await page.getByTestId('import-report').textContent()).toMatch(/SUPIR Studio workflow → ComfyUI API prompt/);
    await page.getByTestId('import-report-ok').click();
  });

  it('keeps an unmappable node as a muted placeholder that names what is missing', async () => {
    const { page } = s;
    await importFile(page, path.join(FIXTURES, 'native-ksampler.api.json'));
    expect(await page.getByTestId('import-report').textContent()).toMatch(/#6 TextGenerate\s*kept as a muted placeholder/);
    await page.getByTestId('import-report-ok').click();
    const placeholder = await hook<{ type: string; mode: number; properties?: Record<string, unknown> }>(page, "return s.workflow().nodes.find((n) => n.id === 6);");
    expect(placeholder).toMatchObject({ type: 'comfy:TextGenerate', mode: 2, properties: { comfy_missing: expect.stringMatching(/TextGenerate/) } });
    await page.waitForTimeout(300);
    await s.shot('comfy-import-native-api');
    // Close up: the placeholder names what is missing.
    await hook(page, "s.graph.focusNode('6');");
    const box = await hook<{ x: number; y: number; width: number; height: number } | null>(page, "return s.graph.nodeBox('6');");
    for (let i = 0; i < 6 && box; i++) await page.mouse.wheel(0, -200);
    await page.waitForTimeout(300);
    await s.shot('comfy-import-placeholder');
  });

  it('opens a ComfyUI workflow put in the workflows folder with Open', async () => {
    const { page } = s;
    fs.copyFileSync(path.join(FIXTURES, 'native-supir-subgraph.json'), path.join(s.server.dirs.folders.workflows, 'comfy-native.json'));
    await page.getByTestId('workflow-menu-button').click();
    await page.getByTestId('menu-open').click();
    await page.locator('[data-testid="library-entry"][data-name="comfy-native"] [data-testid="library-open"]').click();
    const discard = page.getByTestId('unsaved-discard');
    const report = page.getByTestId('import-report');
    await Promise.race([discard.waitFor().then(() => discard.click()), report.waitFor()]);
    await report.waitFor();
    expect(await report.textContent()).toMatch(/schema 1\.0\), 1 subgraph expanded/);
    await page.getByTestId('import-report-ok').click();
    expect(await hook<string[]>(page, 'return s.workflow().nodes.map((n) => n.type);')).toEqual(expect.arrayContaining(['SupirSample', 'TextEncodeSDXL', 'ColourFix']));
  });

  it('opens a PNG that ComfyUI wrote, dropped on the window (its prompt chunk names the values)', async () => {
    const { page } = s;
    const wf = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'kijai-v2-tiled-edm.json'), 'utf8')) as unknown;
    const prompt = { '13': { class_type: 'SUPIR_sample', inputs: { steps: 12 } } };
    const png = addPngTextChunks(await gradient(32, 24).png().toBuffer(), { workflow: asciiJson(wf), prompt: asciiJson(prompt) });
    await hook(
      page,
      `const bytes = Uint8Array.from(atob(arg), (c) => c.charCodeAt(0));
       const dt = new DataTransfer();
       dt.items.add(new File([bytes], 'ComfyUI_00001_.png', { type: 'image/png' }));
       window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));`,
      Buffer.from(png).toString('base64'),
    );
    const discard = page.getByTestId('unsaved-discard');
    const report = page.getByTestId('import-report');
    await Promise.race([discard.waitFor().then(() => discard.click()), report.waitFor()]);
    await report.waitFor();
    expect(await report.textContent()).toMatch(/sampler_tile_size 256 px → tile_size 32 latent cells/);
    await page.getByTestId('import-report-ok').click();
    expect(await hook<unknown>(page, "return s.workflow().nodes.find((n) => n.id === 13).widgets_values.steps;")).toBe(12);
    // The files the imported workflows name are not here: Load Image's preview and the pack's memory
    // estimate answer 404, which the nodes show; nothing else may fail.
    expect(s.errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  });
});
