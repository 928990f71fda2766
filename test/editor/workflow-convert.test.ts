import { describe, expect, it } from 'vitest';
import { parseWorkflow, type Workflow } from '../../server/protocol/index.ts';
import { buildWorkflow, planLoad } from '../../editor/src/graph/workflow-convert.ts';
import { lookup, snapshotOf, template } from './helpers.ts';

const roundTrip = (wf: Workflow, extra = {}): Workflow => buildWorkflow(snapshotOf(planLoad(wf, lookup), extra));

describe('workflow <-> litegraph data', () => {
  it('the shipped template round-trips and stays a valid workflow', () => {
    const wf = template('resize-basic');
    const once = roundTrip(wf);
    expect(() => parseWorkflow(once)).not.toThrow();
    expect(parseWorkflow(once)).toEqual(once);
    expect(roundTrip(once)).toEqual(once);
    expect(once.links).toEqual(wf.links);
    expect(once.nodes.map((n) => [n.id, n.type, n.title, n.pos, n.size])).toEqual(wf.nodes.map((n) => [n.id, n.type, n.title, n.pos, n.size]));
    const resize = once.nodes.find((n) => n.type === 'ImageResize')!;
    expect(resize.widgets_values).toEqual({ mode: 'scale', scale: 2, width: 1024, height: 1024, method: 'lanczos' });
    expect(once.extra).toEqual({ ds: { scale: 1, offset: [0, 0] } });
  });

  it('widget values missing from a file take their defaults', () => {
    const wf = template('resize-basic');
    wf.nodes.find((n) => n.type === 'SaveImage')!.widgets_values = {};
    const save = roundTrip(wf).nodes.find((n) => n.type === 'SaveImage')!;
    expect(save.widgets_values).toEqual({ filename_prefix: 'supir', format: 'png', quality: 95 });
  });

  it('inputs follow the catalogue order and links are re-pointed at them', () => {
    const wf = parseWorkflow({
      format: 'supir-studio/workflow',
      version: 1,
      nodes: [
        { id: 1, type: 'PrimitiveFloat', pos: [0, 0], outputs: [{ name: 'value', type: 'FLOAT', links: [7] }], widgets_values: { value: 3 } },
        { id: 2, type: 'LoadImage', pos: [0, 200], outputs: [{ name: 'image', type: 'IMAGE', links: [8] }] },
        {
          id: 3,
          type: 'ImageResize',
          pos: [300, 0],
          // the widget input first, the socket second: the canvas wants sockets first
          inputs: [
            { name: 'scale', type: 'FLOAT', link: 7, widget: { name: 'scale' } },
            { name: 'image', type: 'IMAGE', link: 8 },
          ],
        },
      ],
      links: [
        [7, 1, 0, 3, 0, 'FLOAT'],
        [8, 2, 0, 3, 1, 'IMAGE'],
      ],
    });
    const plan = planLoad(wf, lookup);
    const resize = plan.nodes.find((n) => n.id === 3)!;
    expect(resize.inputs).toEqual([
      { name: 'image', type: 'IMAGE', link: 8 },
      { name: 'scale', type: 'FLOAT', link: 7, widget: { name: 'scale' } },
    ]);
    expect(plan.links).toEqual([
      [7, 1, 0, 3, 1, 'FLOAT'],
      [8, 2, 0, 3, 0, 'IMAGE'],
    ]);
    expect(plan.nodes.find((n) => n.id === 1)!.outputs).toEqual([{ name: 'value', type: 'FLOAT', links: [7] }]);
    expect(plan.dropped).toEqual([]);
  });

  it('an input named like a widget (no widget field) is taken as a converted widget', () => {
    const wf = template('resize-basic');
    wf.nodes.find((n) => n.id === 2)!.inputs.push({ name: 'width', type: 'INT', link: null });
    const resize = planLoad(wf, lookup).nodes.find((n) => n.id === 2)!;
    expect(resize.inputs[1]).toEqual({ name: 'width', type: 'INT', link: null, widget: { name: 'width' } });
  });

  it('links to slots that do not exist, duplicates and double-fed inputs are dropped, with a note', () => {
    const wf = template('resize-basic');
    wf.links.push([9, 1, 5, 3, 0, 'IMAGE'], [1, 1, 0, 2, 0, 'IMAGE'], [10, 1, 0, 2, 0, 'IMAGE'], [11, 1, 0, 99, 0, 'IMAGE']);
    const plan = planLoad(wf, lookup);
    expect(plan.links.map((l) => l[0])).toEqual([1, 2]);
    expect(plan.dropped).toHaveLength(4);
    expect(plan.nodes.find((n) => n.id === 1)!.outputs[0]!.links).toEqual([1]);
  });

  it('a link from INT into a FLOAT input keeps the output type', () => {
    const wf = parseWorkflow({
      format: 'supir-studio/workflow',
      version: 1,
      nodes: [
        { id: 1, type: 'PrimitiveInt', pos: [0, 0], outputs: [{ name: 'value', type: 'INT', links: [1] }] },
        { id: 2, type: 'ImageResize', pos: [300, 0], inputs: [{ name: 'image', type: 'IMAGE', link: null }, { name: 'scale', type: 'FLOAT', link: 1, widget: { name: 'scale' } }] },
      ],
      links: [[1, 1, 0, 2, 1, 'FLOAT']],
    });
    expect(roundTrip(wf).links).toEqual([[1, 1, 0, 2, 1, 'INT']]);
  });

  it('unknown node types keep their slots, values, properties and links', () => {
    const wf = template('resize-basic');
    const save = wf.nodes.find((n) => n.id === 3)!;
    save.type = 'FutureSaveNode';
    save.properties = { colour: 'teal' };
    save.inputs.push({ name: 'mask', type: 'MASK', link: null });
    save.widgets_values = { filename_prefix: 'x', something_new: 42 };
    const plan = planLoad(wf, lookup);
    expect(plan.nodes.find((n) => n.id === 3)!.known).toBe(false);
    const out = roundTrip(wf);
    const back = out.nodes.find((n) => n.id === 3)!;
    expect(back).toMatchObject({ type: 'FutureSaveNode', properties: { colour: 'teal' }, widgets_values: { filename_prefix: 'x', something_new: 42 } });
    expect(back.inputs).toEqual([
      { name: 'image', type: 'IMAGE', link: 2 },
      { name: 'mask', type: 'MASK', link: null },
    ]);
    expect(out.links).toEqual(wf.links);
  });

  it('values of widgets a known node no longer has are not kept', () => {
    const wf = template('resize-basic');
    wf.nodes.find((n) => n.id === 2)!.widgets_values.sharpen = 0.5;
    expect(roundTrip(wf).nodes.find((n) => n.id === 2)!.widgets_values).not.toHaveProperty('sharpen');
  });

  it('last ids never fall below the ids in use', () => {
    const wf = template('resize-basic');
    wf.last_node_id = 0;
    wf.last_link_id = 0;
    const out = roundTrip(wf);
    expect([out.last_node_id, out.last_link_id]).toEqual([3, 2]);
  });
});

describe('buildWorkflow', () => {
  it('sorts nodes and links by id, rounds positions and omits empty optional fields', () => {
    const plan = planLoad(template('resize-basic'), lookup);
    const snap = snapshotOf(plan, { ds: { scale: 1.23456, offset: Float32Array.from([10.333, -5.5]) } });
    snap.nodes.reverse();
    snap.links.reverse();
    snap.nodes[0]!.pos = Float32Array.from([1.23456, 2.5]);
    const out = buildWorkflow(snap);
    expect(out.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(out.links.map((l) => l[0])).toEqual([1, 2]);
    expect(out.nodes[2]!.pos).toEqual([1.23, 2.5]);
    expect(out.nodes[0]).not.toHaveProperty('flags');
    expect(out.nodes[0]).not.toHaveProperty('properties');
    expect(out.extra.ds).toEqual({ scale: 1.2346, offset: [10.33, -5.5] });
  });

  it('maps litegraph modes other than run / mute / bypass to run, and keeps collapsed and pinned flags', () => {
    const snap = snapshotOf(planLoad(template('resize-basic'), lookup));
    snap.nodes[0]!.mode = 1;
    snap.nodes[1]!.mode = 4;
    snap.nodes[2]!.flags = { collapsed: true, pinned: false, skip_repeated_outputs: true };
    const out = buildWorkflow(snap);
    expect(out.nodes.map((n) => n.mode)).toEqual([0, 4, 0]);
    expect(out.nodes[2]!.flags).toEqual({ collapsed: true });
  });

  it('drops links whose ends disagree with the slots, and the slot references to them', () => {
    const snap = snapshotOf(planLoad(template('resize-basic'), lookup));
    snap.nodes[1]!.inputs[0]!.link = null; // link 1 ends here
    const out = buildWorkflow(snap);
    expect(out.links.map((l) => l[0])).toEqual([2]);
    expect(out.nodes[0]!.outputs[0]!.links).toEqual([]);
    expect(() => parseWorkflow(out)).not.toThrow();
  });

  it('keeps groups and free-form extra data', () => {
    const wf = template('resize-basic');
    wf.groups.push({ title: 'Resize', bounding: [0, 0, 700, 400], color: '#3f789e' });
    const out = roundTrip(wf, { extra: { note: 'hi' } });
    expect(out.groups).toEqual([{ title: 'Resize', bounding: [0, 0, 700, 400], color: '#3f789e' }]);
    expect(out.extra).toMatchObject({ note: 'hi' });
  });
});
