import { parseWorkflow, type EngineEvent, type HistoryEntry, type Workflow } from '../../../server/protocol/index.ts';
import { api, ApiError, onUnauthorized } from '../api/client.ts';
import { EventStream, type StreamEvent } from '../api/events.ts';
import type { GraphView } from '../graph/graph-view.ts';
import { baseNodeId, createGraphView } from '../graph/index.ts';
import { CatalogueState } from './catalogue.svelte.ts';
import { DialogState } from './dialogs.svelte.ts';
import { DocumentState } from './documents.svelte.ts';
import { ErrorState } from './errors.svelte.ts';
import { ImageInputs } from './image-inputs.svelte.ts';
import { QueueState } from './queue.svelte.ts';
import { RunState } from './run.svelte.ts';
import { seedUpdates } from './seed-control.ts';
import { SystemState } from './system.svelte.ts';
import { ViewerState } from './viewer.svelte.ts';

const EVENT_LOG = 500;

/** The whole app: the canvas, the server's state as the editor sees it, and the actions. */
export class Studio {
  readonly clientId = `editor-${crypto.randomUUID().slice(0, 8)}`;
  readonly stream = new EventStream();
  readonly errors = new ErrorState();
  readonly dialogs = new DialogState();
  readonly catalogue = new CatalogueState();
  readonly queue = new QueueState();
  readonly viewer = new ViewerState();
  readonly system = new SystemState();
  readonly run = new RunState(() => this.graph, this.errors);
  readonly documents = new DocumentState(() => this.#requireGraph(), this.dialogs, this.errors);
  /** Images in: the Load Image button, drops, pastes, uploads with progress, the image lists. */
  readonly images = new ImageInputs({
    graph: () => this.graph,
    catalogue: this.catalogue,
    system: this.system,
    errors: this.errors,
    documents: this.documents,
  });

  graph = $state.raw<GraphView | null>(null);
  ready = $state.raw(false);
  connected = $state.raw(false);
  lastPromptId = $state.raw<string | null>(null);
  /** The API answered 401: the server needs its access token, and the editor shows only that. */
  tokenRequired = $state.raw(false);
  /** The last text events, oldest first (for tests and diagnostics). */
  readonly events: EngineEvent[] = [];
  #cleanup: Array<() => void> = [];

  constructor() {
    // Registered before any request goes out: the first one may be the one refused. Nothing else
    // can work without the token, so the stream stops reconnecting until the page reloads with it.
    this.#cleanup.push(
      onUnauthorized(() => {
        this.tokenRequired = true;
        this.stream.close();
      }),
    );
  }

  /** Creates the canvas view, connects the event stream and puts the first workflow on screen. */
  async start(canvas: HTMLCanvasElement): Promise<void> {
    const graph: GraphView = createGraphView(canvas);
    this.graph = graph;
    this.#cleanup.push(
      graph.onChange(() => this.documents.changed()),
      graph.onImageClick((nodeId, url) => this.openNodeImage(nodeId, url)),
      this.stream.subscribe('*', (event) => this.#onEvent(event)),
      this.stream.onConnection((connected) => this.#onConnection(connected)),
    );
    this.stream.connect();
    void this.system.refresh();
    await this.#loadInitial(graph);
    this.ready = true;
    void this.documents.refreshLibrary().catch(() => {});
  }

  destroy(): void {
    this.documents.flushDraft();
    for (const fn of this.#cleanup.splice(0)) fn();
    this.stream.close();
    this.graph?.destroy();
    this.graph = null;
  }

  get overallProgress(): number {
    return this.run.overall;
  }

  /** POST /api/prompt with the canvas; a refused graph marks its issues on the nodes. */
  async queuePrompt(front = false): Promise<string | null> {
    const graph = this.graph;
    if (!graph) return null;
    const workflow: Workflow = { ...graph.serialize(), name: this.documents.title };
    try {
      const { prompt_id, number } = await api.prompt(workflow, { front, clientId: this.clientId });
      this.lastPromptId = prompt_id;
      this.queue.addPending({ id: prompt_id, number, client_id: this.clientId, created_at: Date.now() }, front);
      graph.showIssues([]);
      this.errors.clearIssues();
      this.#applySeedControl(workflow);
      this.queue.scheduleQueueRefresh();
      return prompt_id;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'VALIDATION') {
        graph.showIssues(err.nodeErrors);
        this.errors.showIssues(err.nodeErrors, err.message);
      } else {
        this.errors.notify('error', `Queue failed: ${messageOf(err)}`);
      }
      return null;
    }
  }

  async interrupt(): Promise<void> {
    await api.interrupt().catch((err: unknown) => this.errors.notify('error', `Interrupt failed: ${messageOf(err)}`));
  }

  addNode(type: string, pos?: [number, number]): void {
    const graph = this.graph;
    if (!graph) return;
    try {
      graph.addNode(type, pos);
      this.documents.noteAdded();
    } catch (err) {
      this.errors.notify('error', `Cannot add ${type}: ${messageOf(err)}`);
    }
  }

  /** Shows a node; a sweep's branch copy (`5:1`, as errors and history name it) shows the node it copies. */
  focusNode(nodeId: string): void {
    this.graph?.focusNode(baseNodeId(nodeId));
  }

  /**
   * A finished run's error shown as a live failure shows it: the error panel (full message and
   * inputs), the node brought into view and, with `mark`, the error drawn on that node. A node
   * the open graph does not have (another workflow) is said in a notice instead.
   */
  showRunError(entry: HistoryEntry, mark: boolean): void {
    const error = entry.error;
    if (!error) return;
    this.errors.showExecution({ ...error, prompt_id: entry.id });
    const id = baseNodeId(error.node_id);
    const present = this.graph?.serialize().nodes.some((n) => String(n.id) === id) ?? false;
    if (!present) {
      this.errors.notify('info', `Node #${id} of run #${entry.number} is not in this graph: load the run to see it.`);
      return;
    }
    if (mark) this.graph?.setRunState(id, { status: 'error', progress: null, preview: null, error: error.message });
    this.focusNode(id);
  }

  /**
   * A click on an image in a node: a Compare node's pair opens in compare mode with exactly its two
   * images; any other image opens on its own, captioned with its branch values when it has them.
   */
  openNodeImage(nodeId: string, url: string): void {
    const state = this.graph?.runState(nodeId);
    const pair = state?.compare;
    const node = this.nodeLabel(nodeId);
    if (pair) {
      // An unlabelled side ("A", "B") is named by its node alone: the viewer says which side it is.
      const side = (label: string, slot: string): string => (label.trim() === '' || label === slot ? node : `${node} · ${label}`);
      this.viewer.compare({ url: pair.a, label: side(pair.labelA, 'A') }, { url: pair.b, label: side(pair.labelB, 'B') });
      return;
    }
    const caption = state?.labels?.[state.images.indexOf(url)];
    this.viewer.open({ url, label: caption ? `${node} · ${caption}` : imageLabel(node, url) });
  }

  /**
   * The node's title on the canvas, else its type's display name, else its id. A sweep's branch
   * copy (`5:2`) is named by the node it copies and its branch's values, as the server's events
   * said them ("Shrink · method=bicubic, scale=0.1"), not by its id.
   */
  nodeLabel(nodeId: string): string {
    const base = baseNodeId(nodeId);
    if (base !== nodeId) {
      const branch = this.events.findLast((e) => 'node_id' in e && e.node_id === nodeId && 'branch' in e && e.branch !== undefined);
      const info = branch && 'branch' in branch ? branch.branch : undefined;
      return `${this.nodeLabel(base)} · ${info?.label ?? `branch ${Number(nodeId.slice(base.length + 1)) + 1}`}`;
    }
    const node = this.graph?.serialize().nodes.find((n) => String(n.id) === nodeId);
    const type = node ? this.catalogue.byId(node.type)?.display_name : undefined;
    return node?.title ?? type ?? `#${nodeId}`;
  }

  /** Opens the workflow a history entry ran with, as an unsaved copy (asking about unsaved work first). */
  async loadHistoryWorkflow(entry: HistoryEntry): Promise<void> {
    let workflow: Workflow;
    try {
      // History lists leave large workflows out; the entry itself has them.
      const full = entry.stored_apart ? await api.historyEntry(entry.id) : entry;
      workflow = parseWorkflow(full.workflow);
    } catch (err) {
      this.errors.notify('error', `Run #${entry.number} has no loadable workflow: ${messageOf(err)}`);
      return;
    }
    await this.attempt('Load run', async () => {
      if (!(await this.documents.openUnsaved(workflow, workflow.name ?? `Run #${entry.number}`, `Loading run #${entry.number}`))) return;
      this.queue.togglePanel(false);
      // A failed run comes back with its failing node marked, as it was when it failed.
      if (entry.error) this.showRunError(entry, true);
    });
  }

  /** Runs a workflow action, turning failures into an error notice. */
  async attempt(label: string, action: () => Promise<unknown> | unknown): Promise<void> {
    try {
      await action();
    } catch (err) {
      this.errors.notify('error', `${label} failed: ${messageOf(err)}`);
    }
  }

  async #loadInitial(graph: GraphView): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        graph.setCatalogue(await this.catalogue.load());
        if (this.documents.restoreDraft()) return;
        const templates = await api.templates.list();
        const first = templates.find((t) => t.default) ?? templates[0];
        if (first) await this.documents.openTemplate(first);
        else this.documents.clear();
        return;
      } catch (err) {
        if (attempt === 0) this.errors.notify('error', `Cannot load the editor: ${messageOf(err)}. Retrying…`);
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 10_000)));
      }
    }
  }

  #onEvent(event: StreamEvent): void {
    if (event.type !== 'preview') {
      this.events.push(event);
      if (this.events.length > EVENT_LOG) this.events.splice(0, this.events.length - EVENT_LOG);
    }
    this.run.handle(event);
    if (event.type === 'status') this.queue.setStatus(event.queue_remaining, event.running);
    else if (event.type === 'prompt_start') {
      this.queue.markStarted(event.prompt_id, event.number);
      this.queue.scheduleQueueRefresh();
    } else if (event.type === 'warning') {
      this.errors.notify('info', event.message);
    } else if (event.type === 'prompt_done') {
      this.queue.markFinished(event.prompt_id);
      this.queue.scheduleHistoryRefresh();
      void this.system.refresh();
    }
  }

  #onConnection(connected: boolean): void {
    this.connected = connected;
    if (!connected) return;
    // Events may have been missed while disconnected: catch up.
    this.queue.refreshQueue().catch(() => {});
    this.queue.refreshHistory().catch(() => {});
  }

  #applySeedControl(workflow: Workflow): void {
    const graph = this.graph;
    const catalogue = this.catalogue.data;
    if (!graph || !catalogue) return;
    for (const u of seedUpdates(workflow, catalogue)) graph.setWidget(u.nodeId, u.widget, u.value);
  }

  #requireGraph(): GraphView {
    if (!this.graph) throw new Error('the canvas is not ready');
    return this.graph;
  }
}

/** "Save Image · out_00001_.png" for a /api/view URL; just the node's name for other URLs. */
function imageLabel(node: string, url: string): string {
  const file = new URL(url, location.href).searchParams.get('file');
  return file ? `${node} · ${file.split('/').pop()}` : node;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
