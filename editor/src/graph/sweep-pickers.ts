import { LiteGraph, type CanvasPointerEvent, type IContextMenuValue, type LGraphCanvas, type LGraphNode } from '@comfyorg/litegraph';
import type { IBaseWidget } from '@comfyorg/litegraph/dist/types/widgets';
import { widgetInputIndex } from './widget-inputs.ts';

/**
 * The Sweep (XY) node's text widgets `target` / `y_target` and `x_widget` / `y_widget` open a menu
 * of the graph's nodes and of the chosen node's widgets when clicked (as a ComfyUI combo would).
 * The stored values stay plain strings (a node id, a widget name), as the server reads them
 * (server/engine/sweep.ts), and "Type a value…" still edits the text by hand.
 */
export const SWEEP_NODE_TYPE = 'Sweep';

type ClickOptions = { e: CanvasPointerEvent; node: LGraphNode; canvas: LGraphCanvas };
type SweepWidget = IBaseWidget & {
  onClick(options: ClickOptions): void;
  setValue(value: unknown, options: ClickOptions): void;
};

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Widget kinds the server can sweep (number, combo, text and boolean kinds). */
const SWEEPABLE = new Set(['number', 'combo', 'text', 'toggle']);

/** The node a Sweep's target text names: its id, or else a unique title (as the server resolves it). */
export function resolveSweepTarget(sweep: LGraphNode, ref: string): LGraphNode | undefined {
  const nodes = (sweep.graph?.nodes ?? []) as LGraphNode[];
  const text = ref.trim();
  if (!text) return undefined;
  const byId = nodes.find((n) => String(n.id) === text);
  if (byId) return byId;
  const byTitle = nodes.filter((n) => n.title === text);
  return byTitle.length === 1 ? byTitle[0] : undefined;
}

/** The nodes a Sweep can target: every node but Sweeps. */
function targetChoices(sweep: LGraphNode): LGraphNode[] {
  return ((sweep.graph?.nodes ?? []) as LGraphNode[]).filter((n) => n !== sweep && n.type !== SWEEP_NODE_TYPE);
}

/** Widget names of `target` a sweep can set: its own value widgets, not ones fed by a link. */
export function sweepableWidgets(target: LGraphNode): string[] {
  return (target.widgets ?? [])
    .filter((w) => SWEEPABLE.has(String(w.type)) && !(w as IBaseWidget & { seedOf?: string }).seedOf)
    .filter((w) => {
      const index = widgetInputIndex(target, w.name);
      return index < 0 || target.inputs[index]?.link == null;
    })
    .map((w) => w.name);
}

function widgetOf(node: LGraphNode, name: string): SweepWidget | undefined {
  return node.widgets?.find((w) => w.name === name) as SweepWidget | undefined;
}

function typeByHand(widget: SweepWidget, o: ClickOptions): void {
  o.canvas.prompt('Value', widget.value, (v: unknown) => {
    if (v !== null) widget.setValue(v, o);
  }, o.e);
}

function openMenu(title: string, items: (IContextMenuValue<unknown> | null)[], e: MouseEvent, canvas: LGraphCanvas): void {
  new LiteGraph.ContextMenu(items, { title, event: e, className: 'dark sg-sweep-picker', scale: Math.max(1, canvas.ds.scale) });
}

/** Makes a Sweep node's target and widget text widgets open pickers when clicked. */
export function addSweepPickers(node: LGraphNode): void {
  for (const name of ['target', 'y_target']) {
    const widget = widgetOf(node, name);
    if (!widget) continue;
    widget.onClick = (o) => {
      const items: (IContextMenuValue<unknown> | null)[] = targetChoices(node).map((n) => ({
        content: `${escapeHtml(n.title)} <span class="sg-menu-type">(#${n.id})</span>`,
        callback: () => widget.setValue(String(n.id), o),
      }));
      if (!items.length) items.push({ content: 'No other nodes in the graph', disabled: true });
      items.push(null);
      if (name === 'y_target') items.push({ content: 'Same node as x', callback: () => widget.setValue('', o) });
      items.push({ content: 'Type a value…', callback: () => typeByHand(widget, o) });
      openMenu(name === 'target' ? 'Node to sweep' : 'Node for y', items, o.e, o.canvas);
    };
  }
  for (const [name, targetName, valuesName] of [
    ['x_widget', () => String(widgetOf(node, 'target')?.value ?? ''), 'x_values'],
    ['y_widget', () => String(widgetOf(node, 'y_target')?.value ?? '').trim() || String(widgetOf(node, 'target')?.value ?? ''), 'y_values'],
  ] as const) {
    const widget = widgetOf(node, name);
    if (!widget) continue;
    widget.onClick = (o) => {
      const target = resolveSweepTarget(node, targetName());
      const items: (IContextMenuValue<unknown> | null)[] = [];
      if (!target) items.push({ content: 'Pick the target node first', disabled: true });
      else {
        const names = sweepableWidgets(target);
        for (const w of names) {
          items.push({
            content: escapeHtml(w),
            callback: () => {
              widget.setValue(w, o);
              prefillCombo(node, target, w, valuesName, o);
            },
          });
        }
        if (!names.length) items.push({ content: 'This node has no widget to sweep', disabled: true });
      }
      items.push(null);
      if (name === 'y_widget') items.push({ content: 'None (x only)', callback: () => widget.setValue('', o) });
      items.push({ content: 'Type a value…', callback: () => typeByHand(widget, o) });
      openMenu(target ? `Widget of ${escapeHtml(target.title)} (#${target.id})` : 'Widget to sweep', items, o.e, o.canvas);
    };
  }
}

/** Picking a combo widget fills an empty value list with the combo's options (one per line). */
function prefillCombo(node: LGraphNode, target: LGraphNode, widgetName: string, valuesName: string, o: ClickOptions): void {
  const values = widgetOf(node, valuesName);
  const source = widgetOf(target, widgetName);
  if (!values || !source || source.type !== 'combo' || String(values.value ?? '').trim() !== '') return;
  const options = (source.options as { values?: unknown }).values;
  if (!Array.isArray(options) || !options.length) return;
  values.setValue(options.map(String).join('\n'), o);
}
