import { describe, expect, it } from 'vitest';
import { ComfyBridge, comfyImage } from '../../server/comfy/bridge.ts';
import { readComfyGraph } from '../../server/comfy/graph.ts';
import { comfyMessages } from '../../server/comfy/ws.ts';

describe('ComfyUI websocket messages', () => {
  const bridge = new ComfyBridge();
  bridge.remember('p1', { '14': '2', '15': '2', '9': '9' }, 'client-a');

  it('name ComfyUI node ids (an expanded node reports as the node it came from)', () => {
    expect(comfyMessages({ type: 'node_start', prompt_id: 'p1', node_id: '14', node_type: 'SupirSample' }, bridge)).toEqual([{ type: 'executing', data: { node: '2', display_node: '2', prompt_id: 'p1' } }]);
    expect(comfyMessages({ type: 'progress', prompt_id: 'p1', node_id: '15', value: 3, max: 10 }, bridge)).toEqual([{ type: 'progress', data: { value: 3, max: 10, prompt_id: 'p1', node: '2' } }]);
    expect(comfyMessages({ type: 'cached', prompt_id: 'p1', nodes: ['14', '15', '9'] }, bridge)[0]?.data.nodes).toEqual(['2', '9']);
  });

  it('end every prompt with executing null, after execution_success or an execution_error', () => {
    const failed = comfyMessages({ type: 'error', prompt_id: 'p1', node_id: '9', node_type: 'SaveImage', node_title: 'Save', code: 'BAD_INPUT', message: 'no', inputs: {} }, bridge);
    expect(failed[0]).toMatchObject({ type: 'execution_error', data: { node_id: '9', node_type: 'SaveImage', exception_message: 'no' } });
    expect(comfyMessages({ type: 'prompt_done', prompt_id: 'p1', status: 'error', ms: 1 }, bridge)).toEqual([{ type: 'executing', data: { node: null, prompt_id: 'p1' } }]);
    expect(comfyMessages({ type: 'prompt_done', prompt_id: 'p1', status: 'success', ms: 1 }, bridge).map((m) => m.type)).toEqual(['execution_success', 'executing']);
  });

  it('give executed images as filename, subfolder and type', () => {
    expect(comfyImage({ folder: 'outputs', filename: 'SUPIR/out_00001_.png', kind: 'image' })).toEqual({ filename: 'out_00001_.png', subfolder: 'SUPIR', type: 'output' });
    const done = comfyMessages({ type: 'node_done', prompt_id: 'p1', node_id: '9', cached: false, ms: 3, files: [{ folder: 'temp', filename: 'preview.png', kind: 'image' }] }, bridge);
    expect(done).toEqual([{ type: 'executed', data: { node: '9', display_node: '9', output: { images: [{ filename: 'preview.png', subfolder: '', type: 'temp' }] }, prompt_id: 'p1' } }]);
  });
});

describe('ComfyUI subgraphs', () => {
  it('refuse subgraphs that expand beyond what a workflow may hold', () => {
    const inner = (id: string, child: string) => ({ id, nodes: Array.from({ length: 30 }, (_, i) => ({ id: i + 1, type: child, pos: [0, 0] })), links: [] });
    const defs = [inner('a', 'b'), inner('b', 'c'), inner('c', 'LoadImage')];
    expect(() => readComfyGraph({ nodes: [{ id: 1, type: 'a', pos: [0, 0] }], links: [], definitions: { subgraphs: defs } })).toThrow(/expand to more than 10000 nodes/);
  });
});
