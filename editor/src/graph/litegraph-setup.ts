import { LGraphCanvas, LiteGraph } from '@comfyorg/litegraph';
import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';
import { linkAllowed, linkColours } from './link-rules.ts';
import { applyGlobalTheme } from './theme.ts';

let done = false;

/** Litegraph's global settings for this app: typed links, the theme, no legacy behaviours. */
export function setupLiteGraph(): void {
  if (done) return;
  done = true;
  applyGlobalTheme();
  // Every "may these connect?" question in litegraph (dragging, highlighting valid targets,
  // node.connect) goes through this one function: answer it with the executor's rule.
  LiteGraph.isValidConnection = (fromType, toType) => linkAllowed(fromType, toType);
  LiteGraph.release_link_on_empty_shows_menu = false;
  LiteGraph.ctrl_shift_v_paste_connect_unselected_outputs = false;
  LiteGraph.alt_drag_do_clone_nodes = true;
  LiteGraph.search_show_all_on_open = true;
  LiteGraph.use_uuids = false;
}

/** Link and slot colours by socket type. */
export function applyLinkColours(canvas: LGraphCanvas, catalogue: Pick<NodeCatalogueJson, 'socket_types'>): void {
  const { on, off } = linkColours(catalogue);
  Object.assign(LGraphCanvas.link_type_colors, on);
  Object.assign(canvas.default_connection_color_byType, on);
  Object.assign(canvas.default_connection_color_byTypeOff, off);
}
