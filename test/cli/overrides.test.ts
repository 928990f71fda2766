/** `run --set NODE.WIDGET=VALUE` on an API prompt: NODE is an id, a title or a type, never an inherited name. */
import { describe, expect, it } from 'vitest';
import { applyToPrompt } from '../../server/cli/overrides.ts';
import type { ApiPrompt } from '../../server/protocol/prompt.ts';

const prompt = (): ApiPrompt => ({ '1': { class_type: 'Resize', inputs: { scale: 1 }, _meta: { title: 'Shrink' } } }) as unknown as ApiPrompt;

describe('--set on an API prompt', () => {
  it('finds a node by id, title or type', () => {
    for (const node of ['1', 'Shrink', 'Resize']) {
      const p = prompt();
      applyToPrompt(p, [{ node, widget: 'scale', value: 0.5 }]);
      expect(p['1']!.inputs.scale).toBe(0.5);
    }
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('refuses %s, which names no node', (node) => {
    expect(() => applyToPrompt(prompt(), [{ node, widget: 'x', value: 1 }])).toThrow(new RegExp(`no node with id, title or type '${node}'`));
  });
});
