import { LGraphNode, type IContextMenuValue } from '@comfyorg/litegraph';
import { nodeMenu } from './menus.ts';
import type { Scalar } from './widget-specs.ts';
import { THEME } from './theme.ts';
import { wrapText } from './text-wrap.ts';

/**
 * A node whose type the catalogue does not list (a file from a newer release, or a removed
 * node): drawn red, with its slots, links, properties and widget values kept as they were so that
 * saving the workflow loses nothing. It is never registered, so the search box does not offer it.
 */
export class MissingNode extends LGraphNode {
  /** Widget values from the file, by name, written back unchanged. */
  keptValues: Record<string, Scalar> = {};

  constructor(type: string, title?: string) {
    super(title || type, type);
    this.type = type;
    this.serialize_widgets = false;
  }

  // Drawn red without setting color/bgcolor, which would be saved with the node.
  override get renderingColor(): string {
    return this.color || THEME.missingTitle;
  }

  override get renderingBgColor(): string {
    return this.bgcolor || THEME.missingBody;
  }

  override getMenuOptions(): IContextMenuValue[] {
    return nodeMenu(this) as IContextMenuValue[];
  }

  override onDrawForeground(ctx: CanvasRenderingContext2D): void {
    ctx.save();
    ctx.strokeStyle = THEME.error;
    ctx.globalAlpha = 0.8;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    const w = this.flags.collapsed ? (this._collapsed_width ?? 80) : this.size[0];
    const h = this.flags.collapsed ? 0 : this.size[1];
    ctx.roundRect(0, -30, w, h + 30, 8);
    ctx.stroke();
    ctx.restore();
    if (this.flags.collapsed) return;
    const rows = Math.max(this.inputs.length, this.outputs.length);
    const top = rows * 20 + 14;
    ctx.save();
    ctx.fillStyle = THEME.error;
    ctx.font = `600 12px ${THEME.font}`;
    ctx.textAlign = 'left';
    // A ComfyUI node without an equivalent says what is missing (server/comfy, `properties.comfy_missing`).
    const missing = this.properties?.comfy_missing;
    ctx.fillText(typeof missing === 'string' ? `Not available in SUPIR Studio (${this.mode === 4 ? 'bypassed' : 'muted'})` : 'Unknown node type', 10, top + 4);
    ctx.fillStyle = THEME.muted;
    ctx.font = `12px ${THEME.font}`;
    if (typeof missing === 'string') wrapText(missing, Math.max(120, this.size[0] - 20), (t) => ctx.measureText(t).width, 4).forEach((line, i) => ctx.fillText(line, 10, top + 22 + i * 16));
    else ctx.fillText(`“${this.type}” — kept as is`, 10, top + 22);
    ctx.restore();
  }
}

/** The smallest size that shows the placeholder's slots and message. */
export function missingNodeMinSize(node: MissingNode): [number, number] {
  const rows = Math.max(node.inputs.length, node.outputs.length);
  const extra = typeof node.properties?.comfy_missing === 'string' ? 60 : 0;
  return [Math.max(typeof node.properties?.comfy_missing === 'string' ? 300 : 220, node.size[0]), Math.max(rows * 20 + 50 + extra, node.size[1])];
}

