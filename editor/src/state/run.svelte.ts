import type { BranchInfo, FileRef, PromptStatus } from '../../../server/protocol/index.ts';
import { viewUrl } from '../api/client.ts';
import type { StreamEvent } from '../api/events.ts';
import type { GraphView, NodeRunState } from '../graph/graph-view.ts';
import { baseNodeId, filesPatch, SweepRuns, type BranchChange } from '../graph/sweep-runs.ts';
import type { ErrorState } from './errors.svelte.ts';

/** A batch's images as its last `batch` event counted them (Load Images (folder)). */
export interface BatchView {
  total: number;
  /** Images finished one way or another: run, found done already, or failed. */
  settled: number;
  done: number;
  resumed: number;
  failed: number;
  /** The image running now, relative to its folder. */
  running: string | null;
  /** Milliseconds the images left need at the pace so far, when known. */
  eta: number | null;
}

/**
 * The prompt that is running now: its overall progress (nodes done / nodes to run, plus the
 * running node's fraction) and the canvas overlay, which follows whichever prompt runs.
 */
export class RunState {
  promptId = $state.raw<string | null>(null);
  total = $state.raw(0);
  done = $state.raw(0);
  node = $state.raw<string | null>(null);
  fraction = $state.raw(0);
  /** Milliseconds the running node has left (its last progress event's estimate), when known. */
  eta = $state.raw<number | null>(null);
  /** The running (or last) prompt's batch of images; null when it is not a batch. */
  batch = $state.raw<BatchView | null>(null);
  /** How the last prompt that ran here ended. */
  lastStatus = $state.raw<PromptStatus | null>(null);
  /** Nodes of the running prompt that have not started or finished yet. */
  #waiting = new Set<string>();
  /**
   * Branch copies of a sweep (`5:0`, `5:1`, ...): their events land on the node they copy,
   * captioned with the values the server's events name (not read from the canvas' Sweep node,
   * which may have been edited since the prompt was queued, or queued from another tab).
   */
  #sweeps = new SweepRuns();

  constructor(
    private readonly graph: () => GraphView | null,
    private readonly errors: ErrorState,
  ) {}

  /** 0..1 for the running prompt (or the last one, which ends at 1 unless it failed). */
  get overall(): number {
    // A batch goes by its images: nodes per image are many, and some images are done already.
    if (this.batch && this.promptId !== null) return this.batch.total > 0 ? Math.min(1, (this.batch.settled + (this.batch.running ? this.fraction : 0)) / this.batch.total) : 0;
    if (this.total <= 0) return this.promptId === null && this.lastStatus === 'success' ? 1 : 0;
    return Math.min(1, (this.done + (this.node ? this.fraction : 0)) / this.total);
  }

  handle(event: StreamEvent): void {
    if (event.type === 'status') return;
    if (event.type === 'prompt_start') return this.#start(event.prompt_id, event.nodes);
    if (event.prompt_id !== this.promptId) return;
    switch (event.type) {
      case 'cached':
        this.total = Math.max(0, this.total - event.nodes.length);
        for (const id of event.nodes) this.#patch(id, { status: 'cached', progress: null }, { status: 'cached' }, true);
        break;
      case 'node_start':
        this.node = event.node_id;
        this.fraction = 0;
        this.eta = null;
        this.#patch(event.node_id, { status: 'running', progress: null, error: null }, { status: 'running', fraction: 0 }, false, event.branch);
        break;
      case 'progress': {
        const fraction = event.max > 0 ? event.value / event.max : 0;
        const eta = event.eta_ms ?? null;
        if (event.node_id === this.node) {
          this.fraction = fraction;
          this.eta = eta;
        }
        this.#patch(event.node_id, { progress: event.max > 0 ? fraction : null, eta }, { fraction }, false, event.branch);
        break;
      }
      case 'preview':
        this.#set(baseNodeId(event.node_id), { preview: event.url });
        break;
      case 'node_done':
        this.#nodeDone(event.prompt_id, event.node_id, event.cached, event.files, event.branch);
        break;
      case 'error':
        this.#patch(event.node_id, { status: 'error', progress: null, preview: null, error: event.message }, { status: 'error' }, true, event.branch);
        if (this.#sweeps.isBranch(event.node_id)) this.#set(baseNodeId(event.node_id), { preview: null, error: event.message });
        this.errors.showExecution(event);
        break;
      case 'interrupted':
        if (event.node_id) this.#patch(event.node_id, { status: 'idle', progress: null, preview: null }, { status: 'idle' }, true);
        break;
      case 'batch': {
        const settled = event.done + event.resumed + event.failed;
        this.batch = { total: event.total, settled, done: event.done, resumed: event.resumed, failed: event.failed, running: event.running, eta: event.eta_ms ?? null };
        break;
      }
      case 'prompt_done':
        this.#finish(event.status);
        break;
    }
  }

  #start(promptId: string, nodes: string[]): void {
    this.promptId = promptId;
    this.total = nodes.length;
    this.done = 0;
    this.node = null;
    this.fraction = 0;
    this.#waiting = new Set(nodes);
    this.batch = null;
    this.errors.execution = null;
    this.#sweeps.start(nodes);
    this.#graphCall((g) => g.resetRunState(true));
    for (const id of nodes) this.#patch(id, { status: 'queued', progress: null, preview: null, error: null }, { status: 'queued' });
  }

  #nodeDone(promptId: string, nodeId: string, cached: boolean, files: FileRef[], branch: BranchInfo | undefined): void {
    const patch: Partial<NodeRunState> = { status: cached ? 'cached' : 'done', progress: null, preview: null };
    const shown = files.length > 0 ? filesPatch(files, (f) => viewUrl(f, promptId.slice(0, 8))) : undefined;
    if (shown) Object.assign(patch, shown);
    // A node found in this run's cache (a duplicate branch) was never counted out of the total.
    if (cached && this.#waiting.has(nodeId)) this.total = Math.max(0, this.total - 1);
    this.#patch(nodeId, patch, { status: cached ? 'cached' : 'done', fraction: 0, ...(shown ? { files: shown } : {}) }, true, branch);
    if (this.#sweeps.isBranch(nodeId)) this.#set(baseNodeId(nodeId), { preview: null });
    if (!cached) this.done += 1;
    if (this.node === nodeId) {
      this.node = null;
      this.fraction = 0;
      this.eta = null;
    }
  }

  #finish(status: PromptStatus): void {
    for (const id of this.#waiting) this.#patch(id, { status: 'idle', progress: null }, { status: 'idle' });
    this.#waiting.clear();
    if (status === 'success') this.done = this.total;
    this.lastStatus = status;
    this.node = null;
    this.fraction = 0;
    this.eta = null;
    this.promptId = null;
  }

  /**
   * Updates a node: `patch` for a plain node; for a sweep's branch copy, `change` to its branch,
   * and the node it copies gets the state of all its branches together. `branch` is what the
   * event said of the copy (its node, number and values).
   */
  #patch(nodeId: string, patch: Partial<NodeRunState>, change: BranchChange, settled = false, branch?: BranchInfo): void {
    const merged = this.#sweeps.update(nodeId, change, branch);
    if (!merged) return this.#set(nodeId, patch, settled);
    if (settled) this.#waiting.delete(nodeId);
    // A batch's branches are its images (the prompt's first `batch` event comes before any of them).
    if (this.batch && merged.branches) merged.branches = { ...merged.branches, unit: 'images' };
    this.#set(baseNodeId(nodeId), merged);
  }

  #set(nodeId: string, patch: Partial<NodeRunState>, settled = false): void {
    if (settled) this.#waiting.delete(nodeId);
    this.#graphCall((g) => g.setRunState(nodeId, patch));
  }

  #graphCall(fn: (graph: GraphView) => void): void {
    const graph = this.graph();
    if (!graph) return;
    try {
      fn(graph);
    } catch (err) {
      // The node may be gone (another workflow was loaded while the prompt ran).
      console.warn('canvas overlay update failed', err);
    }
  }
}
