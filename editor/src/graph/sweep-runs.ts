import { parseSweepNumbers, splitSweepItems } from '../../../nodes/compare/lib/sweep-values.ts';
import { MODE_BYPASS, MODE_MUTED, type FileRef, type NodeCatalogueJson, type Workflow } from '../../../server/protocol/index.ts';
import type { ComparePair, NodeRunState } from './graph-view.ts';

/**
 * A sweep runs copies of the swept nodes with ids `<node id>:<branch>` (server/engine/sweep.ts).
 * The canvas has only the original node, so everything a copy does lands there: this module maps
 * branch ids to their node and folds the branches' states into one.
 */
export const BRANCH_SEPARATOR = ':';

/** "5:2" → node "5", branch 2; an id without a branch number is its own node. */
export function splitBranchId(id: string): { node: string; branch: number | null } {
  const i = id.lastIndexOf(BRANCH_SEPARATOR);
  if (i <= 0) return { node: id, branch: null };
  const k = Number(id.slice(i + 1));
  return Number.isInteger(k) && k >= 0 && id.slice(i + 1) !== '' ? { node: id.slice(0, i), branch: k } : { node: id, branch: null };
}

/** The canvas node an engine id refers to. */
export const baseNodeId = (id: string): string => splitBranchId(id).node;

const NUMERIC = new Set(['INT', 'FLOAT', 'SEED']);

/**
 * The label of each branch of the workflow's sweep, x varying fastest as the engine numbers them
 * ("cfg_scale=4, control_scale=0.5"); [] when the graph has no Sweep or its lists do not read.
 * Numbers and ranges are read as the engine reads them, so "4.0" labels as "4" in both.
 */
export function sweepBranchLabels(workflow: Workflow, catalogue: NodeCatalogueJson | null): string[] {
  const sweep = workflow.nodes.find((n) => n.type === 'Sweep' && n.mode !== MODE_MUTED && n.mode !== MODE_BYPASS);
  if (!sweep) return [];
  const w = sweep.widgets_values;
  const text = (name: string): string => (typeof w[name] === 'string' ? (w[name] as string) : '').trim();
  const axis = (targetRef: string, widget: string, values: string): string[] | null => {
    if (!widget) return null;
    const byId = workflow.nodes.find((n) => String(n.id) === targetRef);
    const byTitle = workflow.nodes.filter((n) => n.title === targetRef);
    const target = byId ?? (byTitle.length === 1 ? byTitle[0] : undefined);
    if (!target) return null;
    const kind = catalogue?.nodes.find((n) => n.id === target.type)?.widgets.find((s) => s.name === widget)?.kind;
    const out: string[] = [];
    for (const item of splitSweepItems(values)) {
      if (kind && NUMERIC.has(kind)) {
        const parsed = parseSweepNumbers(item);
        if ('error' in parsed) return null;
        out.push(...parsed.values.map((v) => `${widget}=${v}`));
      } else {
        out.push(`${widget}=${kind === 'BOOLEAN' ? item.toLowerCase() : item}`);
      }
    }
    return out.length ? out : null;
  };
  const x = axis(text('target'), text('x_widget'), text('x_values'));
  if (!x) return [];
  if (!text('y_widget')) return x;
  const y = axis(text('y_target') || text('target'), text('y_widget'), text('y_values'));
  if (!y) return [];
  return y.flatMap((yl) => x.map((xl) => `${xl}, ${yl}`));
}

/** What a node's output files show on it: the images, their captions, and a pair to compare. */
export function filesPatch(files: readonly FileRef[], url: (f: FileRef) => string): Pick<NodeRunState, 'images' | 'labels' | 'compare'> {
  const images = files.map(url);
  const labels = files.map((f) => f.label ?? '');
  const ai = files.findIndex((f) => f.compare === 'a');
  const bi = files.findIndex((f) => f.compare === 'b');
  const compare: ComparePair | null =
    ai >= 0 && bi >= 0 ? { a: images[ai]!, b: images[bi]!, labelA: labels[ai] || 'A', labelB: labels[bi] || 'B' } : null;
  return { images, labels, compare };
}

type BranchStatus = 'queued' | 'running' | 'done' | 'cached' | 'error' | 'idle';

interface BranchRun {
  status: BranchStatus;
  /** 0..1 of the running branch. */
  fraction: number;
  images: string[];
  labels: string[];
  compare: ComparePair | null;
}

export type BranchChange = Partial<Pick<BranchRun, 'status' | 'fraction'>> & { files?: Pick<NodeRunState, 'images' | 'labels' | 'compare'> };

/**
 * The branches of the running prompt, by canvas node. Each event about a copy updates its branch
 * and returns the whole node's state: running while any branch still has to run (progress counts
 * finished branches plus the running one's fraction), done or cached once all have, error if any
 * failed; images of every branch in branch order, each captioned with its branch's values.
 */
export class SweepRuns {
  #nodes = new Map<string, Map<number, BranchRun>>();
  #labels: string[] = [];

  /** A new prompt: `nodes` is its run order (branch ids included), `labels` the branch captions. */
  start(nodes: readonly string[], labels: readonly string[]): void {
    this.#nodes.clear();
    this.#labels = [...labels];
    for (const id of nodes) {
      const { node, branch } = splitBranchId(id);
      if (branch === null) continue;
      const branches = this.#nodes.get(node) ?? new Map<number, BranchRun>();
      branches.set(branch, { status: 'queued', fraction: 0, images: [], labels: [], compare: null });
      this.#nodes.set(node, branches);
    }
  }

  /** Whether `id` is a branch copy of this prompt. */
  isBranch(id: string): boolean {
    const { node, branch } = splitBranchId(id);
    return branch !== null && this.#nodes.get(node)?.has(branch) === true;
  }

  /** The caption of branch `k`: its values, or its number when the sweep could not be read. */
  label(k: number): string {
    return this.#labels[k] ?? `#${k + 1}`;
  }

  /** Applies a change to one branch; returns the state of its node (undefined for an unknown id). */
  update(id: string, change: BranchChange): Partial<NodeRunState> | undefined {
    const { node, branch } = splitBranchId(id);
    const run = branch === null ? undefined : this.#nodes.get(node)?.get(branch);
    if (!run || branch === null) return undefined;
    if (change.status !== undefined) run.status = change.status;
    if (change.fraction !== undefined) run.fraction = change.fraction;
    if (change.files) {
      run.images = change.files.images;
      const caption = this.label(branch);
      run.labels = change.files.images.map((_, i) => [caption, change.files!.labels?.[i]].filter(Boolean).join(' · '));
      run.compare = change.files.compare ?? null;
    }
    return this.#state(node);
  }

  #state(node: string): Partial<NodeRunState> {
    const runs = [...this.#nodes.get(node)!.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    // Branches that never ran (the prompt ended first) count for nothing.
    const counted = runs.filter((r) => r.status !== 'idle');
    const settled = counted.filter((r) => r.status === 'done' || r.status === 'cached').length;
    const total = counted.length;
    const running = counted.filter((r) => r.status === 'running');
    let status: NodeRunState['status'];
    if (counted.some((r) => r.status === 'error')) status = 'error';
    else if (total === 0) status = 'idle';
    else if (settled === total) status = counted.some((r) => r.status === 'done') ? 'done' : 'cached';
    else if (running.length > 0 || settled > 0) status = 'running';
    else status = 'queued';
    const progress = status === 'running' ? (settled + running.reduce((s, r) => s + r.fraction, 0)) / total : null;
    const state: Partial<NodeRunState> = { status, progress, branches: total > 0 ? { settled, total } : null };
    // The last run's images stay until a branch of this one has some.
    if (runs.some((r) => r.images.length > 0)) {
      state.images = runs.flatMap((r) => r.images);
      state.labels = runs.flatMap((r) => r.labels);
      state.compare = [...runs].reverse().find((r) => r.compare)?.compare ?? null;
    }
    return state;
  }
}
