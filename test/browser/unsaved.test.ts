import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dialog, Page } from 'playwright-core';
import { addPngTextChunks } from '../../nodes/image/png-text.ts';
import { spawnChildServer, type ChildServer } from '../server/helpers.ts';
import { openEditor, SHOTS_DIR, type EditorSession } from './harness.ts';

/**
 * Work is never lost: replacing a changed graph (New, a template, a saved workflow, a dropped
 * workflow file or PNG, a run from the history) asks Save / Discard / Cancel and does what was
 * chosen; closing the tab on unsaved work asks the browser's question; the autosaved graph
 * comes back after the server is killed and started again.
 */

interface WorkflowNode {
  id: number;
  type: string;
  widgets_values: Record<string, unknown>;
}

const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

const nodes = (page: Page): Promise<WorkflowNode[]> => hook(page, 'return s.workflow().nodes;');
const types = async (page: Page): Promise<string[]> => (await nodes(page)).map((n) => n.type);
const scale = async (page: Page): Promise<unknown> => (await nodes(page)).find((n) => n.type === 'ImageResize')?.widgets_values.scale;
const LONG = { timeout: 20_000 };
const WORKFLOWS = path.resolve(import.meta.dirname, '../../workflows');
const readWorkflow = (name: string): Record<string, unknown> & { nodes: WorkflowNode[] } => JSON.parse(fs.readFileSync(path.join(WORKFLOWS, `${name}.json`), 'utf8'));

async function menu(page: Page, item: string): Promise<void> {
  await page.getByTestId('workflow-menu-button').click();
  await page.getByTestId(`menu-${item}`).click();
}

async function openTemplate(page: Page, name: string): Promise<void> {
  await menu(page, 'open');
  await page.locator(`[data-testid="template-entry"][data-name="${name}"]`).click();
}

/** Changes Resize's scale with the keyboard, as a person edits a number widget (a click, a value typed). */
async function editScale(page: Page, value: number): Promise<void> {
  const id = String((await nodes(page)).find((n) => n.type === 'ImageResize')!.id);
  await hook(page, 's.graph.setWidget(arg[0], "scale", arg[1]);', [id, value]);
  await expect.poll(() => scale(page)).toBe(value);
}

/** A drop of one file near the canvas's lower right corner, as a drag from the desktop makes it. */
async function dropFile(page: Page, name: string, bytes: Uint8Array, type: string): Promise<void> {
  const box = (await page.getByTestId('graph-canvas').boundingBox())!;
  await hook(
    page,
    `const dt = new DataTransfer();
     dt.items.add(new File([Uint8Array.from(atob(arg.b64), (c) => c.charCodeAt(0))], arg.name, { type: arg.type }));
     const target = document.elementFromPoint(arg.x, arg.y) ?? document.body;
     for (const kind of ['dragenter', 'dragover', 'drop']) {
       target.dispatchEvent(new DragEvent(kind, { dataTransfer: dt, bubbles: true, cancelable: true, clientX: arg.x, clientY: arg.y }));
     }`,
    { name, b64: Buffer.from(bytes).toString('base64'), type, x: box.x + box.width - 60, y: box.y + box.height - 60 },
  );
}

/** The discard prompt, answered with one of its three buttons. */
async function answer(page: Page, choice: 'save' | 'discard' | 'cancel'): Promise<void> {
  await page.getByTestId('unsaved-dialog').waitFor();
  await page.getByTestId(`unsaved-${choice}`).click();
  await page.getByTestId('unsaved-dialog').waitFor({ state: 'detached' });
}

describe('work is never lost', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('asks before New replaces changed work: Cancel keeps it, Discard drops it, Save saves it first', async () => {
    // The default template, unchanged: nothing to lose, so New asks nothing.
    expect(await types(page)).toEqual(['LoadImage', 'LoadUpscaleModel', 'UpscaleImage', 'LoadUpscaleModel', 'UpscaleImage', 'LoadUpscaleModel', 'UpscaleImage', 'SaveImage']);
    await menu(page, 'new');
    await expect.poll(() => types(page)).toEqual([]);
    expect(await page.getByTestId('unsaved-dialog').count()).toBe(0);

    // An empty canvas asks nothing either.
    await openTemplate(page, 'resize-basic');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    await editScale(page, 3);
    await page.getByTestId('dirty-dot').waitFor();

    await menu(page, 'new');
    await page.getByTestId('unsaved-dialog').waitFor();
    expect(await page.getByTestId('unsaved-dialog').textContent()).toMatch(/Save changes to “Resize basic”\?.*not saved in the library/s);
    await page.waitForTimeout(500); // the dialog's entrance animation
    await s.shot('unsaved-01-prompt');
    await answer(page, 'cancel');
    expect(await types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    expect(await scale(page)).toBe(3);

    await menu(page, 'new');
    await answer(page, 'discard');
    await expect.poll(() => types(page)).toEqual([]);

    await openTemplate(page, 'resize-basic');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    await editScale(page, 4);
    await menu(page, 'new');
    await answer(page, 'save');
    // Not in the library yet: Save asks for a name, then New goes on.
    await page.getByTestId('name-input').fill('kept work');
    await page.getByTestId('name-confirm').click();
    await expect.poll(() => types(page)).toEqual([]);
    const saved = (await (await fetch(`${s.server.url}/api/workflows/${encodeURIComponent('kept work')}`)).json()) as { nodes: WorkflowNode[] };
    expect(saved.nodes.find((n) => n.type === 'ImageResize')?.widgets_values.scale).toBe(4);

    // Saved and then changed: the prompt names the saved workflow; Save overwrites it without asking a name.
    await menu(page, 'open');
    await page.locator('[data-testid="library-entry"][data-name="kept work"] [data-testid="library-open"]').click();
    await expect.poll(() => scale(page)).toBe(4);
    await editScale(page, 5);
    await menu(page, 'new');
    await page.getByTestId('unsaved-dialog').waitFor();
    expect(await page.getByTestId('unsaved-dialog').textContent()).toMatch(/Save changes to “kept work”\?.*saved as “kept work”/s);
    await answer(page, 'save');
    await expect.poll(() => types(page)).toEqual([]);
    const resaved = (await (await fetch(`${s.server.url}/api/workflows/${encodeURIComponent('kept work')}`)).json()) as { nodes: WorkflowNode[] };
    expect(resaved.nodes.find((n) => n.type === 'ImageResize')?.widgets_values.scale).toBe(5);
  });

  it('asks before a template, a saved workflow, a dropped workflow file or PNG, or a run from the history replaces changed work', async () => {
    await openTemplate(page, 'resize-basic');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    await editScale(page, 0.25);

    // A template.
    await openTemplate(page, 'restore-esrgan');
    await answer(page, 'cancel');
    expect(await types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    await openTemplate(page, 'restore-esrgan');
    await answer(page, 'discard');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'LoadUpscaleModel', 'UpscaleImage', 'SaveImage']);

    // A saved workflow over a changed template.
    await hook(page, 's.graph.setWidget("1", "image", "")');
    await menu(page, 'open');
    await page.locator('[data-testid="library-entry"][data-name="kept work"] [data-testid="library-open"]').click();
    await answer(page, 'discard');
    await expect.poll(() => scale(page)).toBe(5);

    // A dropped workflow .json: opens as unsaved work (not in the library), once Discard is chosen.
    await editScale(page, 6);
    const json = { ...readWorkflow('resize-basic'), name: 'Dropped flow' };
    json.nodes[1]!.widgets_values.scale = 7;
    await dropFile(page, 'dropped.json', new TextEncoder().encode(JSON.stringify(json)), 'application/json');
    await answer(page, 'cancel');
    expect(await scale(page)).toBe(6);
    await dropFile(page, 'dropped.json', new TextEncoder().encode(JSON.stringify(json)), 'application/json');
    await answer(page, 'discard');
    await expect.poll(() => scale(page)).toBe(7);
    expect(await page.getByTestId('workflow-name').textContent()).toContain('Dropped flow');

    // A PNG that holds a workflow (as Save Image writes it) opens it; the dropped JSON is unsaved work, so it asks.
    const embedded = { ...readWorkflow('restore-esrgan'), name: 'From a PNG' };
    const png = addPngTextChunks(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#204060' } }).png().toBuffer(), { workflow: JSON.stringify(embedded) });
    await dropFile(page, 'restored.png', png, 'image/png');
    await answer(page, 'cancel');
    expect(await scale(page)).toBe(7);
    await dropFile(page, 'restored.png', png, 'image/png');
    await answer(page, 'discard');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'LoadUpscaleModel', 'UpscaleImage', 'SaveImage']);

    // A run from the history.
    await openTemplate(page, 'resize-basic');
    await answer(page, 'discard');
    await expect.poll(() => types(page)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    await editScale(page, 0.5);
    const before = await hook<string | null>(page, 'return s.lastPromptId;');
    await page.getByTestId('queue-button').click();
    await page.waitForFunction((prev) => {
      const st = (globalThis as unknown as { __studio: { lastPromptId: string | null; events: Array<{ type: string; prompt_id?: string }> } }).__studio;
      return st.lastPromptId !== prev && st.events.some((e) => e.type === 'prompt_done' && e.prompt_id === st.lastPromptId);
    }, before, LONG);
    await editScale(page, 0.75);
    await page.getByTestId('queue-toggle').click();
    await page.getByTestId('load-workflow').first().click();
    await answer(page, 'cancel');
    expect(await scale(page)).toBe(0.75);
    await page.getByTestId('load-workflow').first().click();
    await answer(page, 'discard');
    await expect.poll(() => scale(page)).toBe(0.5);
  });

  it('asks the browser’s question before the page is left with unsaved work, and not without', async () => {
    const tab = await s.browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    try {
      await tab.goto(s.server.url);
      await tab.waitForFunction('window.__studio?.ready === true', null, LONG);
      await openTemplate(tab, 'resize-basic');
      await expect.poll(() => types(tab)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
      // A change made with the mouse (browsers ask only on pages a person has used): Resize moved.
      const box = (await hook<{ x: number; y: number; width: number }>(tab, 'return s.graph.nodeBox("2");'))!;
      await tab.mouse.move(box.x + box.width / 2, box.y + 10);
      await tab.mouse.down();
      await tab.mouse.move(box.x + box.width / 2 + 60, box.y + 90, { steps: 6 });
      await tab.mouse.up();
      await tab.getByTestId('dirty-dot').waitFor();
      await hook(tab, 'window.marker = 1;');

      const dialogs: Dialog[] = [];
      tab.on('dialog', (d) => {
        dialogs.push(d);
        void d.dismiss(); // "Stay on page"
      });
      // Leaving the page (a reload, a typed address, closing the tab all ask the same question).
      await hook(tab, 'location.reload();');
      await expect.poll(() => dialogs.length, LONG).toBe(1);
      expect(dialogs[0]!.type()).toBe('beforeunload');
      await tab.waitForTimeout(300);
      expect(await hook(tab, 'return window.marker;')).toBe(1); // stayed

      // Saved: nothing to lose, the page goes without a question.
      await tab.keyboard.press('Control+s');
      await tab.getByTestId('name-input').fill('moved resize');
      await tab.getByTestId('name-confirm').click();
      await expect.poll(() => tab.getByTestId('dirty-dot').count()).toBe(0);
      await tab.reload();
      await tab.waitForFunction('window.__studio?.ready === true', null, LONG);
      expect(await hook(tab, 'return window.marker;')).toBeUndefined();
      expect(dialogs).toHaveLength(1);
      expect(await types(tab)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
    } finally {
      await tab.close();
    }
  });

  describe('autosave across a server restart', () => {
    let child: ChildServer | null = null;
    let dataRoot: string;

    beforeAll(() => {
      dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-autosave-'));
    });
    afterAll(async () => {
      await child?.kill();
      fs.rmSync(dataRoot, { recursive: true, force: true });
    });

    it('brings the unsaved graph back after the server is killed and started again', async () => {
      child = await spawnChildServer(dataRoot);
      const port = Number(new URL(child.url).port);
      const tab = await s.browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
      try {
        await tab.goto(child.url);
        await tab.waitForFunction('window.__studio?.ready === true', null, LONG);
        await openTemplate(tab, 'resize-basic');
        await expect.poll(() => types(tab)).toEqual(['LoadImage', 'ImageResize', 'SaveImage']);
        await editScale(tab, 1.5);
        const added = await hook<string>(tab, "return s.graph.addNode('ImageCrop', [420, 420]);");
        const before = await hook<{ nodes: WorkflowNode[]; links: unknown[] }>(tab, 'return s.workflow();');
        // The draft is written a moment after the last edit.
        await expect
          .poll(() => hook(tab, "return JSON.parse(localStorage.getItem('supir-studio.draft.v1') ?? 'null')?.workflow?.nodes?.length;"))
          .toBe(4);

        // Killed as by the OOM killer: no shutdown code runs.
        await child.kill('SIGKILL');
        child = await spawnChildServer(dataRoot, ['fail', '1000', String(port)]);
        expect(child.url).toBe(`http://127.0.0.1:${port}`);

        tab.on('dialog', (d) => void d.accept()); // "Leave page" if the browser asks
        await tab.reload();
        await tab.waitForFunction('window.__studio?.ready === true', null, LONG);
        const after = await hook<{ nodes: WorkflowNode[]; links: unknown[] }>(tab, 'return s.workflow();');
        expect(after.nodes.map((n) => [n.id, n.type, n.widgets_values])).toEqual(before.nodes.map((n) => [n.id, n.type, n.widgets_values]));
        expect(after.links).toEqual(before.links);
        expect(after.nodes.map((n) => String(n.id))).toContain(added);
        expect(await scale(tab)).toBe(1.5);
        // Still unsaved work: the dot says so, and New still asks.
        await tab.getByTestId('dirty-dot').waitFor();
        await tab.waitForTimeout(200);
        await tab.screenshot({ path: path.join(SHOTS_DIR, 'unsaved-03-after-restart.png') });
        await menu(tab, 'new');
        await tab.getByTestId('unsaved-dialog').waitFor();
        await tab.getByTestId('unsaved-cancel').click();
      } finally {
        await tab.close();
      }
    });
  });

  it('logged no errors in the browser console', () => {
    expect(s.errors).toEqual([]);
  });
});
