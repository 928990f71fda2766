/**
 * Undo and redo by snapshots: after an edit settles (debounced), the graph is captured and
 * compared with the last capture; a difference is one undo step. Pure: the capture, the
 * comparison key and the clock are passed in, so it is tested without a canvas.
 */
export interface HistoryOptions {
  /** Undo steps kept. Default 100. */
  limit?: number;
  /** Quiet time after the last edit signal before the graph is captured. Default 200 ms. */
  delayMs?: number;
  /** While this is true (a drag in progress), a scheduled check waits: a move is one edit. */
  busy?: () => boolean;
}

export class EditHistory<S> {
  readonly #capture: () => S;
  readonly #key: (snapshot: S) => string;
  readonly #onEdit: () => void;
  readonly #limit: number;
  readonly #delay: number;
  readonly #busy: () => boolean;
  #undo: S[] = [];
  #redo: S[] = [];
  #current: S | null = null;
  #currentKey = '';
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(capture: () => S, key: (snapshot: S) => string, onEdit: () => void, options: HistoryOptions = {}) {
    this.#capture = capture;
    this.#key = key;
    this.#onEdit = onEdit;
    this.#limit = Math.max(1, options.limit ?? 100);
    this.#delay = Math.max(0, options.delayMs ?? 200);
    this.#busy = options.busy ?? (() => false);
  }

  get canUndo(): boolean {
    return this.#undo.length > 0;
  }

  get canRedo(): boolean {
    return this.#redo.length > 0;
  }

  get undoDepth(): number {
    return this.#undo.length;
  }

  /** A new document: forget both stacks and take the graph as it is now as the baseline. */
  reset(): void {
    this.#cancel();
    this.#undo = [];
    this.#redo = [];
    this.settle();
  }

  /** Takes the graph as it is now as the current state without recording a step. */
  settle(): void {
    this.#current = this.#capture();
    this.#currentKey = this.#key(this.#current);
  }

  /** Something may have changed: check once things are quiet. */
  schedule(): void {
    this.#cancel();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#busy()) this.schedule();
      else this.check();
    }, this.#delay);
  }

  /** Compares the graph with the last capture now; records a step and reports an edit if it differs. */
  check(): boolean {
    this.#cancel();
    const next = this.#capture();
    const key = this.#key(next);
    if (this.#current !== null && key === this.#currentKey) return false;
    if (this.#current !== null) {
      this.#undo.push(this.#current);
      if (this.#undo.length > this.#limit) this.#undo.splice(0, this.#undo.length - this.#limit);
    }
    this.#redo = [];
    this.#current = next;
    this.#currentKey = key;
    this.#onEdit();
    return true;
  }

  /** The snapshot to restore for one step back, or null; the caller loads it and calls settle(). */
  undo(): S | null {
    this.check();
    const previous = this.#undo.pop();
    if (previous === undefined || this.#current === null) return null;
    this.#redo.push(this.#current);
    this.#current = previous;
    this.#currentKey = this.#key(previous);
    return previous;
  }

  /** The snapshot to restore for one step forward, or null. */
  redo(): S | null {
    this.check();
    const next = this.#redo.pop();
    if (next === undefined || this.#current === null) return null;
    this.#undo.push(this.#current);
    this.#current = next;
    this.#currentKey = this.#key(next);
    return next;
  }

  dispose(): void {
    this.#cancel();
  }

  #cancel(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
