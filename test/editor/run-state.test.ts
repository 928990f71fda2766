import { describe, expect, it } from 'vitest';
import { idleState, RunStates } from '../../editor/src/graph/run-state.ts';

describe('RunStates', () => {
  it('starts idle and merges patches', () => {
    const s = new RunStates();
    expect(s.get('1')).toEqual(idleState());
    s.patch('1', { status: 'running', progress: 0.25 });
    s.patch('1', { progress: 1.7 });
    expect(s.get('1')).toEqual({ status: 'running', progress: 1, images: [], preview: null, error: null });
    expect(s.animating).toBe(true);
  });

  it('returns copies: callers cannot change the stored state', () => {
    const s = new RunStates();
    s.patch('1', { status: 'done', images: ['/a.png'] });
    s.get('1').images.push('/b.png');
    expect(s.get('1').images).toEqual(['/a.png']);
  });

  it('an all-idle state is dropped', () => {
    const s = new RunStates();
    s.patch('1', { status: 'queued' });
    s.patch('1', { status: 'idle' });
    expect(s.active()).toEqual([]);
  });

  it('reset keeps images only when asked', () => {
    const s = new RunStates();
    s.patch('1', { status: 'done', images: ['/a.png'] });
    s.patch('2', { status: 'error', error: 'boom' });
    s.reset(true);
    expect(s.get('1')).toEqual({ ...idleState(), images: ['/a.png'] });
    expect(s.get('2')).toEqual(idleState());
    s.reset();
    expect(s.active()).toEqual([]);
  });

  it('validation issues mark their nodes and the next call clears them', () => {
    const s = new RunStates();
    s.showIssues([
      { node_id: '2', code: 'missing_input', message: "required IMAGE input 'image' is not connected" },
      { node_id: '2', code: 'out_of_range', message: 'scale 99 is out of range' },
      { node_id: null, code: 'no_outputs', message: 'nothing to run' },
    ]);
    expect(s.get('2')).toMatchObject({ status: 'error', error: "required IMAGE input 'image' is not connected\nscale 99 is out of range" });
    expect(s.showIssues([])).toEqual(['2']);
    expect(s.get('2')).toEqual(idleState());
  });

  it('clearing issues leaves an execution error that replaced them', () => {
    const s = new RunStates();
    s.showIssues([{ node_id: '3', code: 'bad_value', message: 'bad' }]);
    s.patch('3', { status: 'error', error: 'node failed: out of memory' });
    s.showIssues([]);
    expect(s.get('3')).toMatchObject({ status: 'error', error: 'node failed: out of memory' });
  });
});
