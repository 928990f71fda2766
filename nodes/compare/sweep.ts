import { defineNode } from '../api/define.ts';
import { StudioError } from '../api/errors.ts';
import { string } from '../api/widgets.ts';

/**
 * The XY plot, engine-native: names a node and one or two of its widgets with value lists; the
 * engine copies that node and everything downstream of it (up to a Grid, Metrics or any other
 * gathering input) once per combination, each copy with its own values, before anything runs
 * (server/engine/sweep.ts). Needs no links; only one Sweep per graph.
 */
export default defineNode({
  id: 'Sweep',
  displayName: 'Sweep (XY)',
  category: 'compare',
  description:
    'Runs a node once per value (x) or per pair of values (x, y) of its widgets; the branches share everything upstream through the cache. Collect them with Grid or Metrics.',
  inputs: {},
  widgets: {
    target: string({ default: '', maxLength: 200, description: 'The node to sweep: its id (#5 → 5) or its title.' }),
    x_widget: string({ default: '', maxLength: 200, description: 'The widget set along x, e.g. cfg_scale.' }),
    x_values: string({
      default: '',
      multiline: true,
      maxLength: 10_000,
      description: 'Comma-separated values (one per line if they contain commas); numbers may be ranges start:stop[:step], stop included.',
    }),
    y_target: string({ default: '', maxLength: 200, description: 'The node whose widget y sets; empty: the same node as x.' }),
    y_widget: string({ default: '', maxLength: 200, description: 'Optional second widget, along y.' }),
    y_values: string({ default: '', multiline: true, maxLength: 10_000, description: 'Values for y, as for x.' }),
  },
  outputs: {},
  sweep: true,
  execute() {
    // Validation expands sweeps away; reaching this means an engine without sweep support ran it.
    throw new StudioError('NODE_FAILED', 'a Sweep node configures the graph and never runs itself');
  },
});
