import { describe, expect, it } from 'vitest';
import { baseNodeId, filesPatch, splitBranchId, SweepRuns } from '../../editor/src/graph/sweep-runs.ts';
import type { BranchInfo, FileRef } from '../../server/protocol/index.ts';

const file = (filename: string, extra: Partial<FileRef> = {}): FileRef => ({ folder: 'temp', filename, kind: 'image', ...extra });
const url = (f: FileRef): string => `/view/${f.filename}`;
/** What the server's events say of copy `k` of node `of`. */
const branch = (of: string, index: number, label: string): BranchInfo => ({ of, index, label });

describe('branch ids', () => {
  it('map a copy to the node it copies and leave plain ids alone', () => {
    expect(splitBranchId('5:2')).toEqual({ node: '5', branch: 2 });
    expect(splitBranchId('12')).toEqual({ node: '12', branch: null });
    // Not a branch number: the id stays whole rather than pointing at a wrong node.
    expect(splitBranchId('5:x')).toEqual({ node: '5:x', branch: null });
    expect(splitBranchId('5:')).toEqual({ node: '5:', branch: null });
    expect(baseNodeId('10:11')).toBe('10');
  });
});

describe('files on a node', () => {
  it('pair the files marked A and B, with their labels', () => {
    const shown = filesPatch([file('a.png', { compare: 'a', label: 'input' }), file('b.png', { compare: 'b' })], url);
    expect(shown).toEqual({
      images: ['/view/a.png', '/view/b.png'],
      labels: ['input', ''],
      compare: { a: '/view/a.png', b: '/view/b.png', labelA: 'input', labelB: 'B' },
    });
    expect(filesPatch([file('x.png')], url).compare).toBeNull();
  });
});

describe('SweepRuns', () => {
  const nodes = ['1', '3:0', '3:1', '3:2', '4:0', '4:1', '4:2'];

  it('folds the branches into one state on the node they copy', () => {
    const runs = new SweepRuns();
    runs.start(nodes);
    expect(runs.isBranch('3:1')).toBe(true);
    expect(runs.isBranch('1')).toBe(false);
    expect(runs.update('1', { status: 'running' })).toBeUndefined();

    expect(runs.update('3:0', { status: 'running', fraction: 0 }, branch('3', 0, 'x=1'))).toMatchObject({ status: 'running', progress: 0, branches: { settled: 0, total: 3 } });
    // Progress runs over the whole sweep: half of the first branch is a sixth of the node.
    expect(runs.update('3:0', { fraction: 0.5 }, branch('3', 0, 'x=1'))!.progress).toBeCloseTo(1 / 6);
    // No branch has images yet: the node keeps what the last run showed.
    expect(runs.update('3:0', { status: 'done', fraction: 0 })).not.toHaveProperty('images');
    expect(runs.update('3:1', { status: 'cached' })).toMatchObject({ status: 'running', branches: { settled: 2, total: 3 } });
    expect(runs.update('3:2', { status: 'done' })).toMatchObject({ status: 'done', progress: null, branches: { settled: 3, total: 3 } });

    // Images of every branch in branch order, whatever order they arrive in, captioned with the
    // values the server's events gave each branch.
    runs.update('4:2', { status: 'done', files: filesPatch([file('c.png')], url) }, branch('4', 2, 'x=3'));
    const state = runs.update('4:0', { status: 'done', files: filesPatch([file('a.png')], url) }, branch('4', 0, 'x=1'));
    expect(state).toMatchObject({ status: 'running', images: ['/view/a.png', '/view/c.png'], labels: ['x=1', 'x=3'] });
    expect(runs.update('4:1', { status: 'cached', files: filesPatch([file('b.png')], url) }, branch('4', 1, 'x=2'))).toMatchObject({
      status: 'done',
      images: ['/view/a.png', '/view/b.png', '/view/c.png'],
      labels: ['x=1', 'x=2', 'x=3'],
    });
    expect(runs.label('4:1')).toBe('x=2');
  });

  it('takes a caption from any event of the copy, even one that came before its files', () => {
    const runs = new SweepRuns();
    runs.start(nodes);
    runs.update('4:1', { status: 'running' }, branch('4', 1, 'cfg_scale=4, control_scale=0.5'));
    // node_done named the branch too, but the caption was already known from node_start.
    expect(runs.update('4:1', { status: 'done', files: filesPatch([file('b.png', { label: 'B' })], url) })!.labels).toEqual(['cfg_scale=4, control_scale=0.5 · B']);
    // A later event with other values (a later prompt's branch 1 would) replaces the caption.
    expect(runs.update('4:1', {}, branch('4', 1, 'cfg_scale=7'))!.labels).toEqual(['cfg_scale=7 · B']);
  });

  it('finds the node a copy belongs to by what the event says, not by the id alone', () => {
    const runs = new SweepRuns();
    runs.start(['7:0', '7:1']);
    // The event names node 7, branch 1, whatever the id looks like.
    expect(runs.update('other-id', { status: 'done' }, branch('7', 1, 'x=2'))).toMatchObject({ branches: { settled: 1, total: 2 } });
    expect(runs.label('7:1')).toBe('x=2');
    // A branch this prompt does not have is not applied anywhere.
    expect(runs.update('7:5', { status: 'done' }, branch('7', 5, 'x=9'))).toBeUndefined();
  });

  it('is cached when every branch was, errs when one fails, and forgets branches that never ran', () => {
    const runs = new SweepRuns();
    runs.start(nodes);
    for (const id of ['3:0', '3:1', '3:2']) runs.update(id, { status: 'cached' });
    expect(runs.update('3:2', {})).toMatchObject({ status: 'cached' });
    // No event named its values yet: a branch is captioned by its number.
    expect(runs.update('4:1', { status: 'done', files: filesPatch([file('b.png', { label: 'B' })], url) })!.labels).toEqual(['#2 · B']);
    expect(runs.label('4:2')).toBe('#3');
    expect(runs.update('4:0', { status: 'error' })).toMatchObject({ status: 'error' });

    const stopped = new SweepRuns();
    stopped.start(nodes);
    stopped.update('3:0', { status: 'done' });
    stopped.update('3:1', { status: 'idle' });
    // Interrupted after one branch: the node shows the one that ran, as done.
    expect(stopped.update('3:2', { status: 'idle' })).toMatchObject({ status: 'done', branches: { settled: 1, total: 1 } });
    stopped.update('4:0', { status: 'idle' });
    stopped.update('4:1', { status: 'idle' });
    expect(stopped.update('4:2', { status: 'idle' })).toMatchObject({ status: 'idle', branches: null });
  });
});
