import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EditHistory } from '../../editor/src/graph/history.ts';

/** A fake graph: its state is a string the test edits. */
function setup(limit?: number) {
  const graph = { state: 'a', view: 0 };
  const edits: string[] = [];
  const history = new EditHistory(
    () => ({ ...graph }),
    (s) => s.state, // the view is not part of the key: panning is no edit
    () => edits.push(graph.state),
    { delayMs: 200, ...(limit ? { limit } : {}) },
  );
  history.reset();
  return { graph, edits, history };
}

describe('EditHistory', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('records an edit once things are quiet for the delay, and reports it', () => {
    const { graph, edits, history } = setup();
    graph.state = 'b';
    history.schedule();
    vi.advanceTimersByTime(150);
    graph.state = 'c';
    history.schedule();
    vi.advanceTimersByTime(150);
    expect(edits).toEqual([]);
    vi.advanceTimersByTime(60);
    expect(edits).toEqual(['c']);
    expect(history.undoDepth).toBe(1);
  });

  it('does not report a check that finds nothing changed (a view change, a run-state redraw)', () => {
    const { graph, edits, history } = setup();
    graph.view = 5;
    history.schedule();
    vi.advanceTimersByTime(300);
    expect(edits).toEqual([]);
    expect(history.canUndo).toBe(false);
  });

  it('undo and redo walk the snapshots; a new edit clears redo', () => {
    const { graph, history } = setup();
    graph.state = 'b';
    history.check();
    graph.state = 'c';
    history.check();
    expect(history.undo()?.state).toBe('b');
    graph.state = 'b'; // the view loads it
    history.settle();
    expect(history.undo()?.state).toBe('a');
    graph.state = 'a';
    history.settle();
    expect(history.undo()).toBeNull();
    expect(history.redo()?.state).toBe('b');
    graph.state = 'b';
    history.settle();
    graph.state = 'x';
    history.check();
    expect(history.canRedo).toBe(false);
    expect(history.undo()?.state).toBe('b');
  });

  it('undo first records a pending edit, so it is not lost', () => {
    const { graph, edits, history } = setup();
    graph.state = 'b';
    history.schedule();
    expect(history.undo()?.state).toBe('a');
    expect(edits).toEqual(['b']);
    expect(history.canRedo).toBe(true);
  });

  it('keeps at most `limit` steps', () => {
    const { graph, history } = setup(3);
    for (const s of ['b', 'c', 'd', 'e', 'f']) {
      graph.state = s;
      history.check();
    }
    expect(history.undoDepth).toBe(3);
    const seen: string[] = [];
    for (let s = history.undo(); s; s = history.undo()) {
      seen.push(s.state);
      graph.state = s.state;
      history.settle();
    }
    expect(seen).toEqual(['e', 'd', 'c']);
  });

  it('reset forgets both stacks', () => {
    const { graph, history } = setup();
    graph.state = 'b';
    history.check();
    history.reset();
    expect(history.canUndo).toBe(false);
    expect(history.undo()).toBeNull();
  });
});

describe('EditHistory while busy', () => {
  it('waits for the drag to end, so a move is one edit', () => {
    vi.useFakeTimers();
    try {
      const graph = { state: 'a' };
      let dragging = true;
      const edits: string[] = [];
      const history = new EditHistory(() => ({ ...graph }), (s) => s.state, () => edits.push(graph.state), { busy: () => dragging });
      history.reset();
      graph.state = 'b';
      history.schedule();
      vi.advanceTimersByTime(1000);
      graph.state = 'c';
      expect(edits).toEqual([]);
      dragging = false;
      vi.advanceTimersByTime(250);
      expect(edits).toEqual(['c']);
      expect(history.undoDepth).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
