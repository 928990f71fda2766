import { describe, expect, it } from 'vitest';
import { formatEta, progressLabels, RunStates } from '../../editor/src/graph/run-state.ts';

describe('progress on a running node', () => {
  it('formats time left in whole seconds, then minutes, then hours', () => {
    expect(formatEta(0)).toBe('1 s');
    expect(formatEta(11_200)).toBe('12 s');
    expect(formatEta(59_000)).toBe('59 s');
    expect(formatEta(185_000)).toBe('3 min 05 s');
    expect(formatEta(3_600_000 + 19 * 60_000 + 1)).toBe('1 h 20 min');
  });

  it('says "37% · 12 s left", shorter variants after it, and only the percent without an estimate', () => {
    expect(progressLabels({ progress: 0.379, eta: 11_500 })).toEqual(['37% · 12 s left', '37% · 12 s', '37%']);
    expect(progressLabels({ progress: 0.379, eta: null })).toEqual(['37%']);
    expect(progressLabels({ progress: 0.4, eta: 5000, branches: { settled: 2, total: 6 } })[0]).toBe('2/6 · 40% · 5 s left');
    expect(progressLabels({ progress: null, eta: 5000 })).toEqual([]);
  });

  it('keeps the time left only while the node runs with progress', () => {
    const states = new RunStates();
    states.patch('3', { status: 'running', progress: 0.25, eta: 9000 });
    expect(states.get('3')).toMatchObject({ progress: 0.25, eta: 9000 });
    states.patch('3', { progress: 0.5, eta: -4 });
    expect(states.get('3').eta).toBeNull();
    states.patch('3', { progress: 0.6, eta: 4000 });
    states.patch('3', { status: 'done', progress: null });
    expect(states.get('3').eta).toBeNull();
  });
});
