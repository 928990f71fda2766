import type { BranchInfo, FileRef } from '../../../server/protocol/index.ts';
import type { ComparePair, NodeRunState } from './graph-view.ts';

/**
 * A sweep runs copies of the swept nodes with ids `<node id>:<branch>` (server/engine/sweep.ts).
 * The canvas has only the original node, so everything a copy does lands there: this module maps
 * branch ids to their node and folds the branches' states into one. The server names each copy's
 * branch in its events (`branch: { of, index, label }`): captions come from there, so they are
 * the values the prompt ran with, whatever the canvas shows now.
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
  /** The branch's values as the server named them ("cfg_scale=4, control_scale=0.5"), once an event said. */
  caption: string | null;
  images: string[];
  /** The files' own captions (Compare's A and B), '' for none. */
  fileLabels: string[];
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

  /** A new prompt: `nodes` is its run order, branch ids included. */
  start(nodes: readonly string[]): void {
    this.#nodes.clear();
    for (const id of nodes) {
      const { node, branch } = splitBranchId(id);
      if (branch === null) continue;
      const branches = this.#nodes.get(node) ?? new Map<number, BranchRun>();
      branches.set(branch, { status: 'queued', fraction: 0, caption: null, images: [], fileLabels: [], compare: null });
      this.#nodes.set(node, branches);
    }
  }

  /** Whether `id` is a branch copy of this prompt. */
  isBranch(id: string): boolean {
    return this.#find(id) !== undefined;
  }

  /** The caption of a copy: its values as the server named them, or its number until an event did. */
  label(id: string): string {
    const found = this.#find(id);
    return found?.run.caption ?? `#${(found?.branch ?? splitBranchId(id).branch ?? 0) + 1}`;
  }

  /**
   * Applies a change to one copy, and the branch its event named (which also says, better than
   * the id, which node it copies); returns the state of that node (undefined for an unknown id).
   */
  update(id: string, change: BranchChange, info?: BranchInfo): Partial<NodeRunState> | undefined {
    const found = this.#find(id, info);
    if (!found) return undefined;
    const { run } = found;
    if (info) run.caption = info.label;
    if (change.status !== undefined) run.status = change.status;
    if (change.fraction !== undefined) run.fraction = change.fraction;
    if (change.files) {
      run.images = change.files.images;
      run.fileLabels = change.files.images.map((_, i) => change.files!.labels?.[i] ?? '');
      run.compare = change.files.compare ?? null;
    }
    return this.#state(found.node);
  }

  #find(id: string, info?: BranchInfo): { node: string; branch: number; run: BranchRun } | undefined {
    const { node, branch } = info ? { node: info.of, branch: info.index } : splitBranchId(id);
    const run = branch === null ? undefined : this.#nodes.get(node)?.get(branch);
    return run && branch !== null ? { node, branch, run } : undefined;
  }

  #state(node: string): Partial<NodeRunState> {
    const entries = [...this.#nodes.get(node)!.entries()].sort((a, b) => a[0] - b[0]);
    const runs = entries.map(([, r]) => r);
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
      state.labels = entries.flatMap(([k, r]) => r.fileLabels.map((own) => [r.caption ?? `#${k + 1}`, own].filter(Boolean).join(' · ')));
      state.compare = [...runs].reverse().find((r) => r.compare)?.compare ?? null;
    }
    return state;
  }
}
