import type { LGraphCanvas, LGraphNode } from '@comfyorg/litegraph';
import type { IBaseWidget } from '@comfyorg/litegraph/dist/types/widgets';
import { api, ApiError } from '../api/client.ts';
import { wrapText } from './text-wrap.ts';
import { THEME } from './theme.ts';

/**
 * The memory a SUPIR run needs, shown where the pack is chosen: one line under the Load SUPIR
 * Model node's widgets, "memory: about 8.4 GB at 1024x1024 (fp16; sampling 8.4 GB); tiled VAE on",
 * from GET /api/supir/estimate for the pack the `pack` widget names, asked again whenever that
 * value changes. It is a widget of its own (drawn, never serialised, never clicked), so litegraph
 * lays it out under the others and grows the node to hold it: nothing overlaps the widgets.
 */
export const SUPIR_PACK_NODE = 'LoadSupirModel';
const PACK_WIDGET = 'pack';
/** The size the line is for: SUPIR's own 1024 px. */
export const ESTIMATE_SIDE = 1024;

const FONT_PX = 11;
const LINE_H = 14;
/** Lines the widget always has room for (a fixed height, so the node does not jump when the answer comes). */
const MAX_LINES = 2;
/** From the node's edge, as litegraph's widgets (BaseWidget.margin). */
const MARGIN = 15;

type Tone = 'ok' | 'pending' | 'problem';

/** What the line said the last time it was drawn, node-local. */
export interface ShownEstimate {
  /** The server's text, or what stands for it (no pack, loading...). */
  text: string;
  /** The lines drawn (wrapped to the node's width). */
  lines: string[];
  rect: { x: number; y: number; w: number; h: number };
}

type EstimateWidget = IBaseWidget & { shown: ShownEstimate | null };

/** Adds the estimate line to a Load SUPIR Model node (after its own widgets). */
export function addPackEstimate(node: LGraphNode): void {
  let pack: string | null | undefined; // undefined: not asked yet; null: the pack comes from a link
  let text = '';
  let tone: Tone = 'pending';
  let request = 0;

  const ask = (name: string | null): void => {
    const id = ++request;
    if (name === null) {
      [text, tone] = ['memory: set by the linked pack input', 'pending'];
      return;
    }
    [text, tone] = ['memory: estimating…', 'pending'];
    api.supirEstimate(name, ESTIMATE_SIDE, ESTIMATE_SIDE).then(
      (e) => {
        if (id === request) [text, tone] = [`memory: ${e.text}`, 'ok'];
      },
      (err: unknown) => {
        if (id !== request) return;
        tone = 'problem';
        if (err instanceof ApiError && err.status === 404) text = `no pack "${name}": convert one with supir-studio convert (see README)`;
        else if (err instanceof ApiError && err.status === 400) text = `pack "${name}" cannot be used: convert it again (see README)`;
        else text = `memory: no estimate (${err instanceof Error ? err.message : String(err)})`;
      },
    ).finally(() => node.graph?.setDirtyCanvas(true, false));
  };

  const widget: EstimateWidget = {
    type: 'supir-estimate',
    name: 'memory estimate',
    value: undefined,
    options: {},
    y: 0,
    // Not a value of the node (workflows keep only the catalogue's widgets), and disabled so that a
    // click on it reaches the node (drag, select) instead of a widget with nothing to do.
    serialize: false,
    disabled: true,
    computedDisabled: true,
    shown: null,
    computeSize: () => [0, MAX_LINES * LINE_H + 6],
    draw(ctx, n, width, y, _h, lowQuality) {
      const current = packOf(n);
      if (current !== pack) {
        pack = current;
        ask(current);
      }
      if (lowQuality) return;
      ctx.save();
      // litegraph halves the alpha of disabled widgets; this one is text to read, not a control.
      ctx.globalAlpha = Math.min(1, ctx.globalAlpha * 2);
      ctx.font = `${FONT_PX}px ${THEME.font}`;
      ctx.fillStyle = tone === 'ok' ? THEME.muted : tone === 'problem' ? THEME.warn : THEME.faint;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      const w = Math.max(0, width - 2 * MARGIN);
      const lines = wrapText(text, w, (s) => ctx.measureText(s).width, MAX_LINES);
      const top = y + 3;
      lines.forEach((line, i) => ctx.fillText(line, MARGIN, top + i * LINE_H));
      ctx.restore();
      widget.shown = { text, lines, rect: { x: MARGIN, y: top, w, h: lines.length * LINE_H } };
    },
  };
  node.addCustomWidget(widget);
}

/** The `pack` widget's value; null while a link feeds it (the value is then not known here). */
function packOf(node: LGraphNode): string | null {
  if (node.inputs.some((i) => i.widget?.name === PACK_WIDGET && i.link != null)) return null;
  const value = node.widgets?.find((w) => w.name === PACK_WIDGET)?.value;
  return typeof value === 'string' ? value : null;
}

/**
 * The estimate line as last drawn on a node, with where it is on the page (client coordinates),
 * for tests: null when the node has none or it was not drawn.
 */
export function shownEstimate(
  canvas: LGraphCanvas,
  el: HTMLCanvasElement,
  node: LGraphNode,
): { text: string; lines: string[]; box: { x: number; y: number; width: number; height: number } } | null {
  const widget = node.widgets?.find((w) => w.type === 'supir-estimate') as EstimateWidget | undefined;
  const shown = widget?.shown;
  if (!shown || node.flags.collapsed) return null;
  const [x, y] = canvas.ds.convertOffsetToCanvas([node.pos[0] + shown.rect.x, node.pos[1] + shown.rect.y]);
  const box = el.getBoundingClientRect();
  const scale = canvas.ds.scale;
  return { text: shown.text, lines: [...shown.lines], box: { x: box.left + (x ?? 0), y: box.top + (y ?? 0), width: shown.rect.w * scale, height: shown.rect.h * scale } };
}
