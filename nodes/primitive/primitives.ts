import { defineNode, type AnyNodeDefinition } from '../api/define.ts';
import { float, int, seed, string } from '../api/widgets.ts';

/**
 * Constants that can feed any widget of the same type through a link, so that one value (a seed,
 * a prompt) is edited in one place and drives many nodes.
 */
const PrimitiveSeed = defineNode({
  id: 'PrimitiveSeed',
  displayName: 'Seed',
  category: 'primitive',
  description: 'A seed; the editor can keep it, increment it or randomise it after each queue.',
  inputs: {},
  widgets: { seed: seed({ default: 0 }) },
  outputs: { seed: 'INT' },
  execute: ({ seed }) => ({ seed }),
});

const PrimitiveInt = defineNode({
  id: 'PrimitiveInt',
  displayName: 'Integer',
  category: 'primitive',
  description: 'A whole number.',
  inputs: {},
  // The 32-bit signed range: every INT widget in the catalogue fits in it.
  widgets: { value: int({ default: 0, min: -2147483648, max: 2147483647, step: 1 }) },
  outputs: { value: 'INT' },
  execute: ({ value }) => ({ value }),
});

const PrimitiveFloat = defineNode({
  id: 'PrimitiveFloat',
  displayName: 'Float',
  category: 'primitive',
  description: 'A decimal number.',
  inputs: {},
  widgets: { value: float({ default: 0, min: -1e9, max: 1e9, step: 0.01 }) },
  outputs: { value: 'FLOAT' },
  execute: ({ value }) => ({ value }),
});

const PrimitiveText = defineNode({
  id: 'PrimitiveText',
  displayName: 'Text',
  category: 'primitive',
  description: 'A piece of text, such as a prompt shared by several nodes.',
  inputs: {},
  widgets: { value: string({ default: '', multiline: true }) },
  outputs: { value: 'STRING' },
  execute: ({ value }) => ({ value }),
});

export const primitiveNodes: AnyNodeDefinition[] = [PrimitiveSeed, PrimitiveInt, PrimitiveFloat, PrimitiveText];
