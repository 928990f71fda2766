import { isWorkflowFile, parseWorkflow, type ComfyReport, type Workflow } from '../../../server/protocol/index.ts';
import { api, workflowNameProblem, type TemplateInfo } from '../api/client.ts';
import { isPng, readPngDocuments } from '../api/png-workflow.ts';
import type { GraphView } from '../graph/graph-view.ts';
import { debounce, readDraft, writeDraft } from './autosave.ts';
import type { DialogState } from './dialogs.svelte.ts';
import type { ErrorState } from './errors.svelte.ts';

/**
 * The workflow on the canvas: its name in the library (null until saved), whether it changed
 * since, the draft in localStorage, and the library operations (open, save, rename, delete,
 * export, import).
 */
export class DocumentState {
  name = $state.raw<string | null>(null);
  /** What the toolbar shows: the saved name, else the workflow's own name, else "Untitled". */
  title = $state.raw('Untitled');
  dirty = $state.raw(false);
  /** Nodes on the canvas, as of the last load or draft write (for the empty-canvas hint). */
  nodeCount = $state.raw(0);
  saved = $state.raw<string[]>([]);
  templates = $state.raw<TemplateInfo[]>([]);
  /** The last saved or loaded graph, to tell real edits from no-ops (null: unknown, so dirty). */
  #baseline: string | null = null;
  #persist = debounce(() => this.#writeDraft(), 400);

  constructor(
    private readonly graph: () => GraphView,
    private readonly dialogs: DialogState,
    private readonly errors: ErrorState,
  ) {}

  /** Puts a workflow on the canvas; `dirty` marks one that is not what the library holds. */
  load(workflow: Workflow, name: string | null, opts: { title?: string; dirty?: boolean; keepView?: boolean } = {}): void {
    this.graph().load(workflow);
    // An opened workflow shows all its nodes; the last session's draft keeps the view it had.
    if (!opts.keepView) this.graph().fitView();
    this.name = name;
    this.title = name ?? opts.title ?? workflow.name ?? 'Untitled';
    this.#baseline = opts.dirty ? null : fingerprint(this.graph().serialize());
    this.dirty = opts.dirty ?? false;
    this.#writeDraft();
  }

  /** Restores the draft of the last session; false when there is none (or it no longer parses). */
  restoreDraft(): boolean {
    const draft = readDraft();
    if (!draft) return false;
    try {
      this.load(parseWorkflow(draft.workflow), draft.name, { title: draft.title, dirty: draft.dirty, keepView: true });
      return true;
    } catch {
      return false;
    }
  }

  /** Called after every graph edit: updates the dirty flag and (debounced) the draft. */
  changed(): void {
    this.#persist();
  }

  /** A node was added: the empty-canvas hint goes now rather than with the next draft write. */
  noteAdded(): void {
    this.nodeCount += 1;
    this.#persist();
  }

  flushDraft(): void {
    this.#persist.flush();
  }

  /**
   * Whether the canvas holds work that would be lost: nodes whose graph differs from what was last
   * saved or opened (an empty canvas holds nothing to lose). Reads the graph now, not the draft.
   */
  hasUnsavedWork(): boolean {
    let workflow: Workflow;
    try {
      workflow = this.graph().serialize();
    } catch {
      return false;
    }
    if (workflow.nodes.length === 0) return false;
    return this.#baseline === null || fingerprint(workflow) !== this.#baseline;
  }

  /**
   * Before the canvas is replaced (`action` says by what): with unsaved work, asks Save / Discard /
   * Cancel. True when the action may go on (saved, discarded, or nothing to lose).
   */
  async confirmDiscard(action: string): Promise<boolean> {
    if (!this.hasUnsavedWork()) return true;
    const saved = this.name !== null;
    const choice = await this.dialogs.askUnsaved({
      title: `Save changes to “${this.title}”?`,
      message: `${action} replaces the workflow on the canvas. ${saved ? `Its changes since it was saved as “${this.name}”` : 'It is not saved in the library, and its changes'} will be lost unless you save them.`,
    });
    if (choice === 'cancel') return false;
    if (choice === 'discard') return true;
    return this.save();
  }

  /** Workflow → New: an empty canvas, after asking about unsaved work. False when cancelled. */
  async newWorkflow(): Promise<boolean> {
    if (!(await this.confirmDiscard('A new workflow'))) return false;
    this.clear();
    return true;
  }

  /** Empties the canvas without asking. */
  clear(): void {
    this.graph().clear();
    this.name = null;
    this.title = 'Untitled';
    this.#baseline = fingerprint(this.graph().serialize());
    this.dirty = false;
    this.#writeDraft();
  }

  async refreshLibrary(): Promise<void> {
    const [saved, templates] = await Promise.all([api.workflows.list(), api.templates.list()]);
    this.saved = saved;
    this.templates = templates;
  }

  async openSaved(name: string): Promise<void> {
    if (!(await this.confirmDiscard(`Opening “${name}”`))) return;
    const raw = await api.workflows.get(name);
    if (!looksLikeComfy(raw)) return this.load(parseWorkflow(raw), name);
    // A ComfyUI workflow copied into the workflows folder opens as an unsaved import (Save writes ours).
    const imported = await api.comfy.import({ workflow: raw, name });
    this.load(parseWorkflow(imported.workflow), null, { title: name, dirty: true });
    this.dialogs.showReport({ title: `Imported ${name}`, report: imported.report });
  }

  async openTemplate(template: TemplateInfo): Promise<void> {
    if (!(await this.confirmDiscard(`Opening the template “${template.title}”`))) return;
    this.load(parseWorkflow(await api.templates.get(template.name)), null, { title: template.title });
  }

  /** Opens a workflow from elsewhere (a run in the history) as an unsaved copy, after asking. */
  async openUnsaved(workflow: Workflow, title: string, action: string): Promise<boolean> {
    if (!(await this.confirmDiscard(action))) return false;
    this.load(workflow, null, { title, dirty: true });
    return true;
  }

  /** Saves under the current name, asking for one the first time. False when cancelled. */
  async save(): Promise<boolean> {
    if (this.name === null) return this.saveAs();
    await this.#put(this.name);
    return true;
  }

  async saveAs(): Promise<boolean> {
    const name = await this.#askName('Save workflow as', 'Save');
    if (name === null) return false;
    if (name !== this.name && this.saved.includes(name)) {
      const ok = await this.dialogs.confirm({ title: 'Replace workflow?', message: `A workflow named “${name}” exists. Replace it?`, confirm: 'Replace', danger: true });
      if (!ok) return false;
    }
    await this.#put(name);
    return true;
  }

  async rename(): Promise<void> {
    const old = this.name;
    if (old === null) {
      await this.saveAs();
      return;
    }
    const name = await this.#askName('Rename workflow', 'Rename');
    if (name === null || name === old) return;
    await this.#put(name);
    await api.workflows.delete(old).catch(() => {});
    await this.refreshLibrary().catch(() => {});
  }

  /** Deletes a saved workflow (the current one by default); the canvas keeps it as unsaved. */
  async remove(name = this.name): Promise<void> {
    if (name === null) return;
    const ok = await this.dialogs.confirm({ title: 'Delete workflow?', message: `“${name}” will be deleted from the library.`, confirm: 'Delete', danger: true });
    if (!ok) return;
    await api.workflows.delete(name);
    if (name === this.name) {
      this.name = null;
      this.#baseline = null;
      this.dirty = true;
      this.#writeDraft();
    }
    this.saved = this.saved.filter((n) => n !== name);
  }

  /** Renames a library entry other than the current one (from the library dialog). */
  async renameSaved(old: string): Promise<void> {
    if (old === this.name) return this.rename();
    const name = await this.#askName('Rename workflow', 'Rename', old);
    if (name === null || name === old) return;
    const doc = parseWorkflow(await api.workflows.get(old));
    await api.workflows.put(name, { ...doc, name });
    await api.workflows.delete(old);
    await this.refreshLibrary();
  }

  exportJson(): void {
    const workflow = { ...this.graph().serialize(), name: this.title };
    download(`${this.title}.json`, workflow);
  }

  /** The graph as a ComfyUI API prompt (server/comfy/export.ts), downloaded, with what changed. */
  async exportComfy(): Promise<void> {
    const { prompt, report } = await api.comfy.export(this.graph().serialize());
    download(`${this.title}.comfyui-api.json`, prompt);
    this.dialogs.showReport({ title: `Exported ${this.title} for ComfyUI`, report });
  }

  /**
   * Opens a .json workflow or a PNG with an embedded one (after asking about unsaved work); says
   * so when the file holds none. ComfyUI's workflows (UI or API format, or the `workflow` /
   * `prompt` chunks of a PNG it wrote) are imported by the server, and its report is shown.
   */
  async importFile(file: File): Promise<void> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const base = file.name.replace(/\.[^.]+$/, '');
    let raw: unknown;
    let prompt: unknown;
    if (isPng(bytes)) {
      const docs = await readPngDocuments(bytes);
      raw = docs.workflow;
      prompt = docs.prompt;
      if (raw === undefined && prompt === undefined) {
        this.errors.notify('error', `${file.name} holds no workflow (only PNGs made by Save Image or ComfyUI do).`);
        return;
      }
    } else if (/\.json$/i.test(file.name) || file.type === 'application/json') {
      try {
        raw = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      } catch {
        this.errors.notify('error', `${file.name} is not valid JSON.`);
        return;
      }
    } else {
      this.errors.notify('error', `${file.name}: drop a workflow .json or a PNG saved by SUPIR Studio or ComfyUI.`);
      return;
    }
    let workflow: Workflow;
    let report: ComfyReport | null = null;
    try {
      if (raw !== undefined && isWorkflowFile(raw)) workflow = parseWorkflow(raw);
      else if (looksLikeComfy(raw) || looksLikeComfy(prompt)) {
        const imported = await api.comfy.import({ ...(raw !== undefined ? { workflow: raw } : {}), ...(prompt !== undefined ? { prompt } : {}), name: base });
        workflow = parseWorkflow(imported.workflow);
        report = imported.report;
      } else workflow = parseWorkflow(raw);
    } catch (err) {
      this.errors.notify('error', `${file.name}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (!(await this.confirmDiscard(`Opening ${file.name}`))) return;
    this.load(workflow, null, { title: workflow.name ?? base, dirty: true });
    if (report) this.dialogs.showReport({ title: `Imported ${file.name}`, report });
    else this.errors.notify('info', `Opened ${file.name}`);
  }

  async #put(name: string): Promise<void> {
    const workflow = { ...this.graph().serialize(), name };
    await api.workflows.put(name, workflow);
    this.name = name;
    this.title = name;
    this.#baseline = fingerprint(workflow);
    this.dirty = false;
    this.#writeDraft();
    if (!this.saved.includes(name)) this.saved = [...this.saved, name].sort();
    this.errors.notify('info', `Saved “${name}”`);
  }

  #askName(title: string, confirm: string, initial = this.name ?? suggestName(this.title)): Promise<string | null> {
    return this.dialogs.askName({ title, label: 'Name', initial, confirm, check: workflowNameProblem });
  }

  #writeDraft(): void {
    let workflow: Workflow;
    try {
      workflow = this.graph().serialize();
    } catch {
      return;
    }
    this.dirty = this.#baseline === null || fingerprint(workflow) !== this.#baseline;
    this.nodeCount = workflow.nodes.length;
    writeDraft({ name: this.name, title: this.title, dirty: this.dirty, workflow });
  }
}

/** The graph without its view (pan and zoom do not make a workflow unsaved) and without its name. */
function fingerprint(workflow: Workflow): string {
  const { ds: _ds, ...extra } = workflow.extra;
  return JSON.stringify({ ...workflow, name: undefined, extra });
}

function suggestName(title: string): string {
  const cleaned = title.replace(/[^\w .()-]+/g, ' ').trim().replace(/[. ]+$/, '');
  return cleaned && cleaned !== 'Untitled' && /^\w/.test(cleaned) ? cleaned.slice(0, 128) : '';
}

function download(name: string, value: unknown): void {
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A ComfyUI UI workflow (`nodes` + `links`, no format of ours) or API prompt (`{"id": {"class_type"}}`). */
function looksLikeComfy(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const doc = raw as Record<string, unknown>;
  if (doc.format !== undefined) return false;
  if (Array.isArray(doc.nodes)) return true;
  const values = Object.values(doc);
  return values.length > 0 && values.every((n) => typeof n === 'object' && n !== null && typeof (n as { class_type?: unknown }).class_type === 'string');
}
