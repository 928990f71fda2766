import type { LGraph, LGraphNode } from '@comfyorg/litegraph';

/**
 * Node classes are registered once, globally, but each graph belongs to one view: nodes reach
 * their view's callbacks through their graph.
 */
export interface ViewHooks {
  /** A widget value or a widget/input conversion changed: the view checks for an edit. */
  edited(node: LGraphNode): void;
  /** The node's "choose file to upload" button was pressed for its image widget `widget`. */
  pickImage?(node: LGraphNode, widget: string): void;
}

const hooks = new WeakMap<object, ViewHooks>();

export function setViewHooks(graph: LGraph, value: ViewHooks): void {
  hooks.set(graph, value);
}

export function viewHooksOf(node: LGraphNode): ViewHooks | undefined {
  return node.graph ? hooks.get(node.graph) : undefined;
}
