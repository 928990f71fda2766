import type { IContextMenuValue, LGraphNode } from '@comfyorg/litegraph';
import { viewHooksOf } from './view-hooks.ts';
import type { WidgetPlan } from './widget-specs.ts';

/**
 * Widgets turned into inputs: the input slot carries `widget: {name}` and takes the widget's link
 * type, so a primitive (or any output of that type) can drive it. Litegraph draws such a slot on
 * the widget's row and greys the widget out while a link feeds it.
 */
export function widgetInputIndex(node: LGraphNode, widget: string): number {
  return node.inputs.findIndex((i) => i.widget?.name === widget);
}

export function convertToInput(node: LGraphNode, plan: Pick<WidgetPlan, 'name' | 'linkType'>): boolean {
  if (widgetInputIndex(node, plan.name) >= 0) return false;
  const size: [number, number] = [node.size[0], node.size[1]];
  node.addInput(plan.name, plan.linkType, { widget: { name: plan.name } });
  node.setSize(size); // addInput grows the node to fit a new row; widget inputs need none
  node.setDirtyCanvas(true, true);
  viewHooksOf(node)?.edited(node);
  return true;
}

export function convertToWidget(node: LGraphNode, name: string): boolean {
  const index = widgetInputIndex(node, name);
  if (index < 0) return false;
  node.disconnectInput(index);
  node.removeInput(index);
  node.setDirtyCanvas(true, true);
  viewHooksOf(node)?.edited(node);
  return true;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The node menu's "Convert to input" / "Convert to widget" submenus. */
export function widgetInputMenu(node: LGraphNode, plans: readonly WidgetPlan[]): (IContextMenuValue<unknown> | null)[] {
  const toInput = plans.filter((p) => widgetInputIndex(node, p.name) < 0);
  const toWidget = plans.filter((p) => widgetInputIndex(node, p.name) >= 0);
  const items: (IContextMenuValue<unknown> | null)[] = [];
  if (toInput.length) {
    items.push({
      content: 'Convert to input',
      has_submenu: true,
      submenu: {
        title: 'Feed a widget from a link',
        options: toInput.map((p) => ({
          content: `${escapeHtml(p.name)} <span class="sg-menu-type">${escapeHtml(p.linkType)}</span>`,
          callback: () => void convertToInput(node, p),
        })),
      },
    });
  }
  if (toWidget.length) {
    items.push({
      content: 'Convert to widget',
      has_submenu: true,
      submenu: {
        title: 'Edit on the node again',
        options: toWidget.map((p) => ({ content: escapeHtml(p.name), callback: () => void convertToWidget(node, p.name) })),
      },
    });
  }
  return items;
}
