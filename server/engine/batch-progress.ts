import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { HistoryBatch, HistoryBatchItem, HistoryBatchItemStatus } from '../protocol/history.ts';
import type { EngineEvent, NodeErrorInfo } from './events.ts';
import type { ResumedBatch } from './batch.ts';
import type { CompiledGraph } from './graph.ts';
import { nodeSources } from './plan.ts';

/** How one image of a batch ended. `not run`: the run stopped (Stop, or a shared node failed) first. */
export type BatchItemStatus = HistoryBatchItemStatus;

/** One image's end (its `ms`: from the image's first node starting to its last node ending). */
export type BatchItemResult = HistoryBatchItem;

/** A batch's images as a run left them: in the PromptResult, the history and `run --json`. */
export type BatchSummary = HistoryBatch;

/**
 * Follows a batch through one run: which image each node belongs to, when an image starts and
 * ends, the images that failed (a node of an image that fails ends that image only: the nodes
 * downstream of it in the same branch are passed over, the other images run on), and an
 * estimate of the time left from the pace of the images run so far. Emits `batch` events.
 */
export class BatchProgress {
  readonly #items: BatchItemResult[];
  readonly #left = new Map<number, number>();
  readonly #started = new Map<number, number>();
  readonly #dead = new Set<string>();
  #firstStart: number | null = null;
  #running: string | null = null;
  /** The first image's error: what the run reports as its error when images failed. */
  firstError: NodeErrorInfo | null = null;

  constructor(
    private readonly graph: CompiledGraph,
    resumed: ResumedBatch,
    private readonly emit: (e: EngineEvent) => void,
    private readonly promptId: string,
  ) {
    const plan = graph.batch!;
    this.#items = plan.items.map((item) => ({ index: item.index, position: item.position, source: item.source, status: resumed.items.has(item.index) ? 'resumed' : 'not run', files: [] }));
    for (const [id, files] of resumed.resumed) this.#items[graph.nodes.get(id)!.batch!.index]!.files.push(...files);
    for (const id of graph.order) {
      const item = graph.nodes.get(id)!.batch;
      if (item && !resumed.items.has(item.index)) this.#left.set(item.index, (this.#left.get(item.index) ?? 0) + 1);
    }
  }

  /** Sends the first `batch` event: how many images, how many are done already. */
  begin(): void {
    this.#send();
  }

  /** True when a node of `id`'s image failed upstream of it: the node is passed over. */
  blocked(id: string): boolean {
    const node = this.graph.nodes.get(id)!;
    if (!nodeSources(node).some(([src]) => this.#dead.has(src))) return false;
    this.#dead.add(id);
    if (node.batch) this.#settle(node.batch.index);
    return true;
  }

  nodeStarted(id: string): void {
    const item = this.graph.nodes.get(id)!.batch;
    if (!item || this.#started.has(item.index)) return;
    const now = performance.now();
    this.#started.set(item.index, now);
    this.#firstStart ??= now;
    this.#running = item.source;
    this.#send();
  }

  nodeDone(id: string, files: readonly FileRef[]): void {
    const item = this.graph.nodes.get(id)!.batch;
    if (!item || this.#items[item.index]!.status === 'resumed') return;
    this.#items[item.index]!.files.push(...files);
    this.#settle(item.index);
  }

  /** A node of an image failed: true when the run goes on with the other images. */
  nodeFailed(id: string, error: NodeErrorInfo): boolean {
    const item = this.graph.nodes.get(id)!.batch;
    if (!item) return false;
    this.#dead.add(id);
    const result = this.#items[item.index]!;
    result.status = 'failed';
    result.error ??= error.message;
    this.firstError ??= error;
    this.#settle(item.index);
    return true;
  }

  summary(): BatchSummary {
    const count = (s: BatchItemStatus): number => this.#items.filter((i) => i.status === s).length;
    return { node: this.graph.batch!.node, total: this.#items.length, done: count('done'), resumed: count('resumed'), failed: count('failed'), items: this.#items };
  }

  #settle(index: number): void {
    const left = (this.#left.get(index) ?? 1) - 1;
    this.#left.set(index, left);
    if (left > 0) return;
    const result = this.#items[index]!;
    if (result.status === 'not run') result.status = 'done';
    const started = this.#started.get(index);
    if (started !== undefined) result.ms = Math.round(performance.now() - started);
    if (this.#running === result.source) this.#running = null;
    this.#send();
  }

  #send(): void {
    const s = this.summary();
    const ran = s.done + s.failed;
    const waiting = s.total - ran - s.resumed;
    const eta = ran > 0 && this.#firstStart !== null ? ((performance.now() - this.#firstStart) / ran) * waiting : undefined;
    this.emit({
      type: 'batch',
      prompt_id: this.promptId,
      node_id: s.node,
      total: s.total,
      done: s.done,
      resumed: s.resumed,
      failed: s.failed,
      running: this.#running,
      ...(eta === undefined ? {} : { eta_ms: Math.round(eta) }),
    });
  }
}
