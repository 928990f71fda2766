import { describe, expect, it } from 'vitest';
import { baseNodeId, filesPatch, splitBranchId, SweepRuns, sweepBranchLabels } from '../../editor/src/graph/sweep-runs.ts';
import type { FileRef, NodeCatalogueJson, Workflow } from '../../server/protocol/index.ts';

/** Just enough catalogue for the labels: which widgets are numbers. */
const catalogue = {
  socket_types: [],
  nodes: [
    {
      id: 'SupirSample',
      widgets: [
        { name: 'cfg_scale', kind: 'FLOAT', link_type: 'FLOAT' },
        { name: 'sampler', kind: 'COMBO', link_type: 'COMBO' },
      ],
    },
    { id: 'ColourFix', widgets: [{ name: 'method', kind: 'COMBO', link_type: 'COMBO' }] },
  ],
} as unknown as NodeCatalogueJson;

function workflow(sweep: Record<string, string>, mode = 0): Workflow {
  const node = (id: number, type: string, title: string, widgets_values: Record<string, string> = {}) =>
    ({ id, type, title, pos: [0, 0], size: [100, 100], mode, inputs: [], outputs: [], widgets_values }) as unknown as Workflow['nodes'][number];
  return {
    format: 'supir-studio/workflow',
    version: 1,
    last_node_id: 9,
    last_link_id: 0,
    nodes: [node(4, 'SupirSample', 'Sampler'), node(7, 'ColourFix', 'Colour Fix'), node(9, 'Sweep', 'Sweep', sweep)],
    links: [],
    groups: [],
    extra: {},
  } as unknown as Workflow;
}

const file = (filename: string, extra: Partial<FileRef> = {}): FileRef => ({ folder: 'temp', filename, kind: 'image', ...extra });
const url = (f: FileRef): string => `/view/${f.filename}`;

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

describe('sweep branch labels', () => {
  it('read values and ranges as the engine does, x fastest', () => {
    const wf = workflow({ target: 'Sampler', x_widget: 'cfg_scale', x_values: '2, 4.0:5:1', y_target: '7', y_widget: 'method', y_values: 'Wavelet, None' });
    expect(sweepBranchLabels(wf, catalogue)).toEqual([
      'cfg_scale=2, method=Wavelet', 'cfg_scale=4, method=Wavelet', 'cfg_scale=5, method=Wavelet',
      'cfg_scale=2, method=None', 'cfg_scale=4, method=None', 'cfg_scale=5, method=None',
    ]);
  });

  it('give one axis alone, keep colons in texts, and give up on what cannot be read', () => {
    expect(sweepBranchLabels(workflow({ target: '4', x_widget: 'sampler', x_values: 'a:b\nc' }), catalogue)).toEqual(['sampler=a:b', 'sampler=c']);
    expect(sweepBranchLabels(workflow({ target: '4', x_widget: 'cfg_scale', x_values: '3:1' }), catalogue)).toEqual([]);
    expect(sweepBranchLabels(workflow({ target: 'nobody', x_widget: 'cfg_scale', x_values: '1' }), catalogue)).toEqual([]);
    // A muted Sweep does not run, so nothing is labelled.
    expect(sweepBranchLabels(workflow({ target: '4', x_widget: 'cfg_scale', x_values: '1, 2' }, 2), catalogue)).toEqual([]);
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
    runs.start(nodes, ['x=1', 'x=2', 'x=3']);
    expect(runs.isBranch('3:1')).toBe(true);
    expect(runs.isBranch('1')).toBe(false);
    expect(runs.update('1', { status: 'running' })).toBeUndefined();

    expect(runs.update('3:0', { status: 'running', fraction: 0 })).toMatchObject({ status: 'running', progress: 0, branches: { settled: 0, total: 3 } });
    // Progress runs over the whole sweep: half of the first branch is a sixth of the node.
    expect(runs.update('3:0', { fraction: 0.5 })!.progress).toBeCloseTo(1 / 6);
    // No branch has images yet: the node keeps what the last run showed.
    expect(runs.update('3:0', { status: 'done', fraction: 0 })).not.toHaveProperty('images');
    expect(runs.update('3:1', { status: 'cached' })).toMatchObject({ status: 'running', branches: { settled: 2, total: 3 } });
    expect(runs.update('3:2', { status: 'done' })).toMatchObject({ status: 'done', progress: null, branches: { settled: 3, total: 3 } });

    // Images of every branch in branch order, whatever order they arrive in, captioned by branch.
    runs.update('4:2', { status: 'done', files: filesPatch([file('c.png')], url) });
    const state = runs.update('4:0', { status: 'done', files: filesPatch([file('a.png')], url) });
    expect(state).toMatchObject({ status: 'running', images: ['/view/a.png', '/view/c.png'], labels: ['x=1', 'x=3'] });
    expect(runs.update('4:1', { status: 'cached', files: filesPatch([file('b.png')], url) })).toMatchObject({
      status: 'done',
      images: ['/view/a.png', '/view/b.png', '/view/c.png'],
      labels: ['x=1', 'x=2', 'x=3'],
    });
  });

  it('is cached when every branch was, errs when one fails, and forgets branches that never ran', () => {
    const runs = new SweepRuns();
    runs.start(nodes, []);
    for (const id of ['3:0', '3:1', '3:2']) runs.update(id, { status: 'cached' });
    expect(runs.update('3:2', {})).toMatchObject({ status: 'cached' });
    // Without labels a branch is captioned by its number.
    expect(runs.update('4:1', { status: 'done', files: filesPatch([file('b.png', { label: 'B' })], url) })!.labels).toEqual(['#2 · B']);
    expect(runs.update('4:0', { status: 'error' })).toMatchObject({ status: 'error' });

    const stopped = new SweepRuns();
    stopped.start(nodes, []);
    stopped.update('3:0', { status: 'done' });
    stopped.update('3:1', { status: 'idle' });
    // Interrupted after one branch: the node shows the one that ran, as done.
    expect(stopped.update('3:2', { status: 'idle' })).toMatchObject({ status: 'done', branches: { settled: 1, total: 1 } });
    stopped.update('4:0', { status: 'idle' });
    stopped.update('4:1', { status: 'idle' });
    expect(stopped.update('4:2', { status: 'idle' })).toMatchObject({ status: 'idle', branches: null });
  });
});
