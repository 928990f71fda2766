import { LGraphCanvas, type IContextMenuValue, type LGraphNode } from '@comfyorg/litegraph';
import { MODE_ALWAYS, MODE_BYPASS, MODE_MUTED } from '../../../server/protocol/index.ts';
import { viewHooksOf } from './view-hooks.ts';

type MenuItem = IContextMenuValue<unknown> | null;

const MODES: Array<[label: string, mode: number]> = [
  ['Always run', MODE_ALWAYS],
  ['Mute (leave out)', MODE_MUTED],
  ['Bypass (pass input through)', MODE_BYPASS],
];

/** The nodes a menu action on `node` applies to: the selection if `node` is in it, else `node`. */
function targets(node: LGraphNode): LGraphNode[] {
  const selected = Object.values(LGraphCanvas.active_canvas?.selected_nodes ?? {});
  return node.selected && selected.length > 1 ? selected : [node];
}

/**
 * The node's context menu (litegraph appends Clone, Align and Remove). Replaces litegraph's own,
 * which offers subgraphs, a property panel and event modes this app has no use for.
 */
export function nodeMenu(node: LGraphNode): MenuItem[] {
  const edited = (): void => {
    node.setDirtyCanvas(true, true);
    viewHooksOf(node)?.edited(node);
  };
  return [
    { content: 'Rename…', callback: LGraphCanvas.onShowPropertyEditor as IContextMenuValue['callback'] },
    {
      content: 'Mode',
      has_submenu: true,
      submenu: {
        title: 'When the graph runs',
        options: MODES.map(([label, mode]) => ({
          content: `${node.mode === mode ? '● ' : ''}${label}`,
          callback: () => {
            for (const n of targets(node)) n.mode = mode;
            edited();
          },
        })),
      },
    },
    {
      content: node.collapsed ? 'Expand' : 'Collapse',
      callback: () => {
        for (const n of targets(node)) n.collapse();
        edited();
      },
    },
    {
      content: node.pinned ? 'Unpin' : 'Pin',
      callback: () => {
        for (const n of targets(node)) n.pin(!node.pinned);
        edited();
      },
    },
    { content: 'Colour', has_submenu: true, callback: LGraphCanvas.onMenuNodeColors as IContextMenuValue['callback'] },
    { content: 'Fit size to content', callback: LGraphCanvas.onMenuResizeNode as IContextMenuValue['callback'] },
    null,
  ];
}

/** The empty canvas's context menu. */
export function canvasMenu(canvas: LGraphCanvas, selectedNodes: number, groupSelection: () => void): IContextMenuValue<string>[] {
  const items: Array<IContextMenuValue<string> | null> = [
    { content: 'Add node', has_submenu: true, callback: LGraphCanvas.onMenuAdd as IContextMenuValue<string>['callback'] },
    {
      content: 'Search nodes…',
      callback: (_v, _o, e) => {
        if (e) canvas.showSearchBox(e);
      },
    },
    { content: 'Add group', callback: LGraphCanvas.onGroupAdd as IContextMenuValue<string>['callback'] },
  ];
  if (selectedNodes > 0) items.push(null, { content: 'Group selected nodes', callback: () => groupSelection() });
  if (selectedNodes > 1) items.push({ content: 'Align selected', has_submenu: true, callback: LGraphCanvas.onGroupAlign as IContextMenuValue<string>['callback'] });
  return items as IContextMenuValue<string>[];
}
