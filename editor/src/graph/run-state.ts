import type { ValidationIssue } from '../../../server/protocol/index.ts';
import type { NodeRunState } from './graph-view.ts';
import { baseNodeId } from './sweep-runs.ts';

/** What every node shows before anything ran. */
export function idleState(): NodeRunState {
  return { status: 'idle', progress: null, images: [], preview: null, error: null };
}

/**
 * The run state of every node, by node id. Pure: the overlay draws from it, the view feeds it.
 * Validation issues mark their nodes as errors and are cleared by the next `showIssues`.
 */
export class RunStates {
  #states = new Map<string, NodeRunState>();
  #issueText = new Map<string, string>();

  get(nodeId: string): NodeRunState {
    const s = this.#states.get(nodeId);
    return s ? { ...s, images: [...s.images], ...(s.labels ? { labels: [...s.labels] } : {}) } : idleState();
  }

  /** The live state for drawing (not copied); undefined while idle. */
  peek(nodeId: string): Readonly<NodeRunState> | undefined {
    return this.#states.get(nodeId);
  }

  patch(nodeId: string, patch: Partial<NodeRunState>): NodeRunState {
    const next: NodeRunState = { ...(this.#states.get(nodeId) ?? idleState()) };
    if (patch.status !== undefined) next.status = patch.status;
    if (patch.progress !== undefined) next.progress = clampProgress(patch.progress);
    if (patch.eta !== undefined) next.eta = patch.eta !== null && Number.isFinite(patch.eta) && patch.eta >= 0 ? patch.eta : null;
    // Time left belongs to a node that runs and reports progress.
    if (next.progress === null || (patch.status !== undefined && patch.status !== 'running')) next.eta = null;
    if (patch.images !== undefined) next.images = patch.images.filter((u) => typeof u === 'string' && u !== '');
    if (patch.preview !== undefined) next.preview = patch.preview || null;
    if (patch.error !== undefined) next.error = patch.error || null;
    if (patch.labels !== undefined) next.labels = [...patch.labels];
    if (patch.compare !== undefined) next.compare = patch.compare;
    if (patch.branches !== undefined) next.branches = patch.branches;
    this.#set(nodeId, next);
    return next;
  }

  /** Back to idle everywhere; with `keepImages`, nodes keep the images of the last run. */
  reset(keepImages = false): void {
    const kept = new Map<string, NodeRunState>();
    if (keepImages) {
      for (const [id, s] of this.#states) {
        if (s.images.length) kept.set(id, { ...idleState(), images: [...s.images], ...(s.labels ? { labels: [...s.labels] } : {}), ...(s.compare ? { compare: s.compare } : {}) });
      }
    }
    this.#states = kept;
    this.#issueText.clear();
  }

  /**
   * Marks the nodes named by validation issues as errors with their messages, and clears the marks
   * of the previous call. Returns the ids whose state changed.
   */
  showIssues(issues: readonly ValidationIssue[]): string[] {
    const text = new Map<string, string[]>();
    for (const issue of issues) {
      if (issue.node_id === null) continue;
      // An issue about a sweep's branch copy (`5:1`) marks the node on the canvas (5).
      const id = baseNodeId(issue.node_id);
      const list = text.get(id) ?? [];
      if (!list.includes(issue.message)) list.push(issue.message);
      text.set(id, list);
    }
    const changed = new Set<string>();
    for (const [id, previous] of this.#issueText) {
      if (text.has(id)) continue;
      const s = this.#states.get(id);
      if (s && s.error === previous) this.patch(id, { status: 'idle', error: null });
      changed.add(id);
    }
    this.#issueText.clear();
    for (const [id, messages] of text) {
      const message = messages.join('\n');
      this.#issueText.set(id, message);
      this.patch(id, { status: 'error', progress: null, error: message });
      changed.add(id);
    }
    return [...changed];
  }

  /** Node ids with a state other than idle. */
  active(): string[] {
    return [...this.#states.keys()];
  }

  /** Whether something animates (a running node pulses). */
  get animating(): boolean {
    for (const s of this.#states.values()) if (s.status === 'running') return true;
    return false;
  }

  #set(nodeId: string, state: NodeRunState): void {
    const idle = state.status === 'idle' && state.progress === null && !state.images.length && !state.preview && !state.error;
    if (idle) this.#states.delete(nodeId);
    else this.#states.set(nodeId, state);
  }
}

/** "12 s", "3 min 05 s", "1 h 20 min": a time left, rounded up to whole seconds (minutes past an hour). */
export function formatEta(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.ceil(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * What a running node says of its progress, longest first: "37% · 12 s left", "37% · 12 s", "37%"
 * (a swept node leads with its branches: "2/6 · 40%"). The overlay draws the longest that fits.
 */
export function progressLabels(state: Pick<NodeRunState, 'progress' | 'eta' | 'branches'>): string[] {
  if (state.progress === null) return [];
  const branches = state.branches && state.branches.total > 1 ? `${state.branches.settled}/${state.branches.total} · ` : '';
  const percent = `${branches}${Math.floor(state.progress * 100)}%`;
  const eta = state.eta ?? null;
  if (eta === null || state.progress >= 1) return [percent];
  return [`${percent} · ${formatEta(eta)} left`, `${percent} · ${formatEta(eta)}`, percent];
}

function clampProgress(p: number | null): number | null {
  if (p === null || !Number.isFinite(p)) return null;
  return Math.min(1, Math.max(0, p));
}
