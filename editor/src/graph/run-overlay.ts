import { LiteGraph, type LGraphNode } from '@comfyorg/litegraph';
import { MODE_BYPASS, MODE_MUTED } from '../../../server/protocol/index.ts';
import type { NodeRunState } from './graph-view.ts';
import { inputPreviewUrl, type NodeImages } from './node-images.ts';
import { progressLabels, type RunStates } from './run-state.ts';
import { wrapText } from './text-wrap.ts';
import { THEME } from './theme.ts';

/**
 * Draws what a run did to each node, on top of litegraph's own drawing (called with the context
 * at the node's origin): status outlines, badges, the progress bar, images and error text.
 */
export class RunOverlay {
  readonly #states: RunStates;
  readonly #images: NodeImages;

  constructor(states: RunStates, images: NodeImages) {
    this.#states = states;
    this.#images = images;
  }

  drawNode(node: LGraphNode, ctx: CanvasRenderingContext2D, now: number): void {
    const state = this.#states.peek(String(node.id));
    ctx.save();
    const collapsed = node.flags.collapsed === true;
    const [w, h] = collapsed ? [node._collapsed_width ?? LiteGraph.NODE_COLLAPSED_WIDTH, 0] : [node.size[0], node.size[1]];
    if (!collapsed) {
      const live = state?.status === 'running' && state.preview ? state.preview : null;
      const shown = live ? [live] : (state?.images ?? []);
      const input = shown.length ? null : inputPreviewUrl(node);
      if (!live && !input && state?.compare) this.#images.drawPair(node, ctx, state.compare);
      else this.#images.draw(node, ctx, input ? [input] : shown, live || input ? [] : (state?.labels ?? []));
      drawWidgetSockets(node, ctx);
    }
    if (node.mode === MODE_BYPASS || node.mode === MODE_MUTED) drawMode(node, ctx, w, h);
    if (state) {
      drawOutline(ctx, state, w, h, now);
      if (!collapsed) {
        if (state.progress !== null && state.status === 'running') drawProgress(ctx, state.progress, w, h);
        drawBadge(ctx, state, w, node.title);
      }
      if (state.error) drawError(ctx, state.error, w, h);
    }
    ctx.restore();
  }
}

const TITLE = (): number => LiteGraph.NODE_TITLE_HEIGHT;

function outlinePath(ctx: CanvasRenderingContext2D, w: number, h: number, pad: number): void {
  ctx.beginPath();
  ctx.roundRect(-pad, -TITLE() - pad, w + pad * 2, h + TITLE() + pad * 2, LiteGraph.ROUND_RADIUS + pad);
}

function drawOutline(ctx: CanvasRenderingContext2D, state: NodeRunState, w: number, h: number, now: number): void {
  ctx.save();
  switch (state.status) {
    case 'running': {
      const pulse = 0.5 + 0.5 * Math.sin((now / 900) * Math.PI * 2);
      ctx.strokeStyle = THEME.accent;
      ctx.shadowColor = THEME.accent;
      ctx.shadowBlur = 6 + 10 * pulse;
      ctx.globalAlpha = 0.65 + 0.35 * pulse;
      ctx.lineWidth = 2.5;
      outlinePath(ctx, w, h, 3);
      ctx.stroke();
      break;
    }
    case 'queued':
      ctx.strokeStyle = THEME.accent;
      ctx.globalAlpha = 0.45;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([6, 5]);
      outlinePath(ctx, w, h, 3);
      ctx.stroke();
      break;
    case 'cached':
      ctx.strokeStyle = THEME.ok;
      ctx.globalAlpha = 0.45;
      ctx.lineWidth = 1.5;
      outlinePath(ctx, w, h, 2);
      ctx.stroke();
      break;
    case 'error':
      ctx.strokeStyle = THEME.error;
      ctx.lineWidth = 2.5;
      outlinePath(ctx, w, h, 3);
      ctx.stroke();
      break;
    default:
      break;
  }
  ctx.restore();
}

function drawProgress(ctx: CanvasRenderingContext2D, progress: number, w: number, h: number): void {
  const x = 8;
  const width = w - 16;
  const y = h - 7;
  ctx.fillStyle = 'rgba(255, 255, 255, 0.08)';
  ctx.beginPath();
  ctx.roundRect(x, y, width, 4, 2);
  ctx.fill();
  if (progress > 0) {
    ctx.fillStyle = THEME.accent;
    ctx.beginPath();
    ctx.roundRect(x, y, Math.max(4, width * progress), 4, 2);
    ctx.fill();
  }
}

/** "cached" pill, done tick, or percent and time left at the right end of the title bar. */
function drawBadge(ctx: CanvasRenderingContext2D, state: NodeRunState, w: number, title: string): void {
  const cy = -TITLE() / 2;
  if (state.status === 'cached') {
    pill(ctx, 'cached', w, cy, THEME.ok, 'rgba(92, 201, 138, 0.16)', 'rgba(92, 201, 138, 0.55)');
  } else if (state.status === 'error') {
    pill(ctx, 'error', w, cy, '#ffb4b4', 'rgba(239, 107, 107, 0.2)', 'rgba(239, 107, 107, 0.7)');
  } else if (state.status === 'done') {
    const x = w - 18;
    ctx.strokeStyle = THEME.ok;
    ctx.globalAlpha = 0.9;
    ctx.lineWidth = 2;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(x - 5, cy);
    ctx.lineTo(x - 1.5, cy + 3.5);
    ctx.lineTo(x + 5, cy - 4);
    ctx.stroke();
    ctx.globalAlpha = 1;
  } else if (state.status === 'running' && state.progress !== null) {
    // "37% · 12 s left", shortened where the title needs the room ("2/6 · 40%" for a swept node).
    ctx.font = `${LiteGraph.NODE_TEXT_SIZE}px ${LiteGraph.NODE_FONT}`;
    const room = w - 10 - (TITLE() + ctx.measureText(title).width + 10);
    ctx.font = `600 11px ${THEME.font}`;
    const labels = progressLabels(state);
    const label = labels.find((l) => ctx.measureText(l).width <= room) ?? labels.at(-1) ?? '';
    ctx.fillStyle = THEME.accent;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, w - 10, cy + 0.5);
  }
  // A finished sweep says how many branches it ran, left of the tick or pill.
  if ((state.status === 'done' || state.status === 'cached') && state.branches && state.branches.total > 1) {
    ctx.font = `600 10px ${THEME.font}`;
    ctx.fillStyle = THEME.muted;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.globalAlpha = 1;
    ctx.fillText(`${state.branches.total} ${state.branches.unit ?? 'branches'}`, w - (state.status === 'done' ? 30 : 64), cy + 0.5);
  }
}

function pill(ctx: CanvasRenderingContext2D, label: string, w: number, cy: number, ink: string, fill: string, stroke: string): void {
  ctx.font = `600 10px ${THEME.font}`;
  const tw = ctx.measureText(label).width + 12;
  const x = w - tw - 8;
  ctx.fillStyle = fill;
  ctx.strokeStyle = stroke;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.roundRect(x, cy - 8, tw, 16, 8);
  ctx.fill();
  ctx.stroke();
  ctx.fillStyle = ink;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, x + tw / 2, cy + 0.5);
}

/** The error text, wrapped in a red box under the node, so it hides none of its slots. */
function drawError(ctx: CanvasRenderingContext2D, message: string, w: number, h: number): void {
  const width = Math.max(w, 220);
  ctx.font = `12px ${THEME.font}`;
  const lines = wrapText(message, width - 20, (s) => ctx.measureText(s).width, 8);
  const lineH = 16;
  const y = h + 10;
  const boxH = lines.length * lineH + 12;
  ctx.fillStyle = 'rgba(58, 24, 28, 0.96)';
  ctx.strokeStyle = 'rgba(239, 107, 107, 0.7)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.roundRect(0, y, width, boxH, 6);
  ctx.fill();
  ctx.stroke();
  ctx.fillStyle = '#ffc9c9';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  lines.forEach((line, i) => ctx.fillText(line, 10, y + 7 + i * lineH));
}

function drawMode(node: LGraphNode, ctx: CanvasRenderingContext2D, w: number, h: number): void {
  const bypass = node.mode === MODE_BYPASS;
  ctx.save();
  ctx.fillStyle = bypass ? 'rgba(167, 123, 224, 0.22)' : 'rgba(22, 23, 27, 0.55)';
  ctx.beginPath();
  ctx.roundRect(0, -TITLE(), w, h + TITLE(), LiteGraph.ROUND_RADIUS);
  ctx.fill();
  if (!node.flags.collapsed) {
    ctx.font = `600 10px ${THEME.font}`;
    ctx.fillStyle = bypass ? THEME.bypass : THEME.muted;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'bottom';
    ctx.fillText(bypass ? 'BYPASSED' : 'MUTED', w - 8, -TITLE() - 4);
  }
  ctx.restore();
}

/** A ring on each widget turned into an input while nothing feeds it, so the socket is findable. */
function drawWidgetSockets(node: LGraphNode, ctx: CanvasRenderingContext2D): void {
  node.inputs.forEach((input, i) => {
    if (!input.widget || input.link != null) return;
    const p = node.getInputPos(i);
    ctx.beginPath();
    ctx.arc((p[0] ?? 0) - node.pos[0], (p[1] ?? 0) - node.pos[1], 4, 0, Math.PI * 2);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = THEME.muted;
    ctx.stroke();
  });
}
