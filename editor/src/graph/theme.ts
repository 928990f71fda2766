import { LGraphCanvas, LiteGraph, RenderShape } from '@comfyorg/litegraph';

/** The canvas's dark theme, matched to the app's (editor/src/theme.css). */
export const THEME = {
  background: '#16171b',
  gridMinor: 'rgba(255, 255, 255, 0.028)',
  gridMajor: 'rgba(255, 255, 255, 0.055)',
  nodeBody: '#23252c',
  nodeTitle: '#2c2f38',
  text: '#e4e6eb',
  muted: '#9aa0ac',
  faint: '#6b7180',
  widgetBg: '#1a1c21',
  widgetOutline: '#3a3e4a',
  accent: '#6ea8fe',
  ok: '#5cc98a',
  error: '#ef6b6b',
  warn: '#f0b95b',
  bypass: '#a77be0',
  missingTitle: '#5a2a2e',
  missingBody: '#34242a',
  groupColour: '#3f5a7a',
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
} as const;

let globalsApplied = false;

/** Litegraph's global look (it is one global object, so this runs once). */
export function applyGlobalTheme(): void {
  if (globalsApplied) return;
  globalsApplied = true;
  Object.assign(LiteGraph, {
    NODE_TITLE_HEIGHT: 30,
    NODE_TITLE_TEXT_Y: 20,
    NODE_SLOT_HEIGHT: 20,
    NODE_WIDGET_HEIGHT: 22,
    NODE_WIDTH: 180,
    NODE_TITLE_COLOR: THEME.text,
    NODE_SELECTED_TITLE_COLOR: '#ffffff',
    NODE_TEXT_SIZE: 14,
    NODE_SUBTEXT_SIZE: 12,
    NODE_TEXT_COLOR: THEME.muted,
    NODE_TEXT_HIGHLIGHT_COLOR: THEME.text,
    NODE_DEFAULT_COLOR: THEME.nodeTitle,
    NODE_DEFAULT_BGCOLOR: THEME.nodeBody,
    NODE_DEFAULT_BOXCOLOR: '#5b6070',
    NODE_DEFAULT_SHAPE: RenderShape.ROUND,
    NODE_BOX_OUTLINE_COLOR: THEME.accent,
    NODE_ERROR_COLOUR: THEME.error,
    NODE_FONT: THEME.font,
    DEFAULT_FONT: THEME.font,
    GROUP_FONT: THEME.font,
    DEFAULT_SHADOW_COLOR: 'rgba(0, 0, 0, 0.45)',
    ROUND_RADIUS: 8,
    WIDGET_BGCOLOR: THEME.widgetBg,
    WIDGET_OUTLINE_COLOR: THEME.widgetOutline,
    WIDGET_TEXT_COLOR: THEME.text,
    WIDGET_SECONDARY_TEXT_COLOR: THEME.muted,
    WIDGET_DISABLED_TEXT_COLOR: THEME.faint,
    LINK_COLOR: '#8a90a0',
    CONNECTING_LINK_COLOR: THEME.accent,
  });
  LGraphCanvas.DEFAULT_BACKGROUND_IMAGE = '';
}

/** The per-canvas settings of the theme. */
export function applyCanvasTheme(canvas: LGraphCanvas): void {
  canvas.background_image = '';
  canvas.clear_background_color = THEME.background;
  canvas.render_canvas_border = false;
  canvas.render_shadows = true;
  canvas.render_connections_border = true;
  canvas.render_link_tooltip = false;
  canvas.show_info = false;
  canvas.connections_width = 3;
  canvas.node_title_color = THEME.text;
  canvas.default_link_color = '#8a90a0';
  canvas.default_connection_color = { input_off: '#5b6070', input_on: '#9aa0ac', output_off: '#5b6070', output_on: '#9aa0ac' };
  canvas.onDrawBackground = (ctx, area: ArrayLike<number>) => drawGrid(ctx, area, canvas.ds.scale);
  canvas.canvas.style.background = THEME.background;
}

/** A subtle two-level grid, in graph units (minor every 20, major every 100). */
export function drawGrid(ctx: CanvasRenderingContext2D, area: ArrayLike<number>, scale: number): void {
  const [x, y, w, h] = [area[0] ?? 0, area[1] ?? 0, area[2] ?? 0, area[3] ?? 0];
  ctx.save();
  ctx.lineWidth = 1 / scale;
  const lines = (step: number, colour: string): void => {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    for (let gx = Math.floor(x / step) * step; gx <= x + w; gx += step) {
      ctx.moveTo(gx, y);
      ctx.lineTo(gx, y + h);
    }
    for (let gy = Math.floor(y / step) * step; gy <= y + h; gy += step) {
      ctx.moveTo(x, gy);
      ctx.lineTo(x + w, gy);
    }
    ctx.stroke();
  };
  if (scale >= 0.6) lines(20, THEME.gridMinor);
  if (scale >= 0.25) lines(100, THEME.gridMajor);
  ctx.restore();
}
