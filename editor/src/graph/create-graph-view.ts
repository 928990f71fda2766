import '@comfyorg/litegraph/style.css';
import './graph.css';
import { LGraph, LGraphGroup, LGraphNode, LiteGraph } from '@comfyorg/litegraph';
import { parseWorkflow, type NodeCatalogueJson, type Workflow } from '../../../server/protocol/index.ts';
import { trackCanvasSize } from './canvas-size.ts';
import { GraphClipboard } from './clipboard.ts';
import type { GraphView } from './graph-view.ts';
import { EditHistory } from './history.ts';
import { ImageCache } from './image-cache.ts';
import { applyLinkColours, setupLiteGraph } from './litegraph-setup.ts';
import { canvasMenu } from './menus.ts';
import { imageWidgetOf, nodeBox, refreshComboOptions } from './image-inputs.ts';
import { inputNodeHeight, NodeImages } from './node-images.ts';
import { nearestFreeAround, placeInRow } from './placement.ts';
import { shownEstimate } from './pack-estimate.ts';
import { registerCatalogue } from './node-classes.ts';
import { trackPointer } from './pointer.ts';
import { RunOverlay } from './run-overlay.ts';
import { RunStates } from './run-state.ts';
import { StudioCanvas } from './studio-canvas.ts';
import { applyCanvasTheme } from './theme.ts';
import { setViewHooks } from './view-hooks.ts';
import { applyView, fitView, nodeById, setNodeWidget, slotClientPosition, viewState, widgetClientPosition } from './view-ops.ts';
import type { CatalogueNode } from './widget-specs.ts';
import { arrangeNode, loadIntoGraph, serializeGraph } from './workflow-io.ts';

/** The graph canvas on a `<canvas>` element; the only place the app meets litegraph. */
export function createGraphView(el: HTMLCanvasElement): GraphView {
  setupLiteGraph();
  const graph = new LGraph();
  const canvas = new StudioCanvas(el, graph);
  applyCanvasTheme(canvas);
  if (el.tabIndex < 0) el.tabIndex = 0;

  let catalogue = new Map<string, CatalogueNode>();
  let docName: string | undefined;
  let docExtra: Record<string, unknown> = {};
  let loading = false;
  const changeListeners = new Set<() => void>();
  const imageListeners = new Set<(nodeId: string, url: string) => void>();
  const pickListeners = new Set<(nodeId: string) => void>();
  const emit = <A extends unknown[]>(listeners: Iterable<(...args: A) => void>, ...args: A): void => {
    for (const l of [...listeners]) {
      try {
        l(...args);
      } catch (err) {
        console.error(err);
      }
    }
  };

  const states = new RunStates();
  const cache = new ImageCache(() => canvas.setDirty(true, true));
  const images = new NodeImages(cache);
  const overlay = new RunOverlay(states, images);
  canvas.afterDrawNode = (node, ctx) => overlay.drawNode(node, ctx, performance.now());
  canvas.onRender = () => {
    if (states.animating) canvas.dirty_canvas = true; // keeps the running outline pulsing
  };

  const serialize = (): Workflow =>
    serializeGraph(graph, canvas, { ...(docName !== undefined ? { name: docName } : {}), extra: docExtra, sizeOf: (n) => images.baseSize(n) });
  const history = new EditHistory<Workflow>(serialize, fingerprint, () => emit(changeListeners), {
    busy: () => canvas.pointer.isDown || canvas.linkConnector.isConnecting,
  });
  const maybeEdited = (): void => {
    if (!loading) history.schedule();
  };
  setViewHooks(graph, { edited: maybeEdited, pickImage: (node) => emit(pickListeners, String(node.id)) });
  graph.on_change = maybeEdited;
  graph.onAfterChange = maybeEdited;
  canvas.onNodeMoved = maybeEdited;

  const clipboard = new GraphClipboard(canvas);
  const pointer = trackPointer(el, canvas, graph, images, (id, url) => emit(imageListeners, id, url), maybeEdited);
  const stopResize = trackCanvasSize(canvas, el);

  const loadInternal = (wf: Workflow, keepView: boolean): void => {
    const view = keepView ? viewState(canvas) : null;
    loading = true;
    try {
      canvas.deselectAll();
      const plan = loadIntoGraph(graph, wf, catalogue);
      if (plan.dropped.length) console.warn(`workflow loaded with changes: ${plan.dropped.join('; ')}`);
      applyView(canvas, view ?? wf.extra.ds);
    } finally {
      loading = false;
    }
    canvas.setDirty(true, true);
  };
  const restore = (snapshot: Workflow | null): void => {
    if (!snapshot) return;
    loadInternal(snapshot, true);
    history.settle();
    emit(changeListeners);
  };
  const selectedNodes = (): LGraphNode[] => [...canvas.selectedItems].filter((i): i is LGraphNode => i instanceof LGraphNode);
  const graphPoint = (clientX: number, clientY: number): [number, number] | null => {
    const rect = el.getBoundingClientRect();
    if (clientX < rect.left || clientY < rect.top || clientX > rect.right || clientY > rect.bottom) return null;
    const p = canvas.ds.convertCanvasToOffset([clientX - rect.left, clientY - rect.top]);
    return [p[0] ?? 0, p[1] ?? 0];
  };
  const viewCentre = (): [number, number] => {
    const rect = el.getBoundingClientRect();
    const p = canvas.convertCanvasToOffset([rect.width / 2, rect.height / 2]);
    return [p[0] ?? 0, p[1] ?? 0];
  };

  const view: GraphView = {
    setCatalogue(next: NodeCatalogueJson): void {
      const current = graph.nodes.length ? serialize() : null;
      catalogue = new Map(next.nodes.map((n) => [n.id, n]));
      registerCatalogue(next);
      applyLinkColours(canvas, next);
      if (current) {
        loadInternal(current, true);
        history.settle();
      }
      canvas.setDirty(true, true);
    },
    load(workflow: Workflow): void {
      const wf = parseWorkflow(workflow);
      const { ds: _ds, ...extra } = wf.extra;
      docName = wf.name;
      docExtra = extra;
      states.reset();
      images.forget();
      loadInternal(wf, false);
      history.reset();
    },
    serialize,
    clear(): void {
      loading = true;
      try {
        graph.clear();
      } finally {
        loading = false;
      }
      docName = undefined;
      docExtra = {};
      states.reset();
      images.forget();
      history.reset();
      canvas.setDirty(true, true);
    },
    addNode(type: string, pos?: [number, number]): string {
      const node = LiteGraph.createNode(type);
      if (!node) throw new Error(`unknown node type "${type}"`);
      if (pos) node.pos = [pos[0], pos[1]];
      else {
        // Near the view's centre, in the free spot nearest to it: it covers no node already there.
        const centre = viewCentre();
        const title = LiteGraph.NODE_TITLE_HEIGHT;
        const [w, h] = [node.size[0], node.size[1] + title];
        const rect = el.getBoundingClientRect();
        const scale = canvas.ds.scale;
        const view = { x: centre[0] - rect.width / 2 / scale, y: centre[1] - rect.height / 2 / scale, w: rect.width / scale, h: rect.height / scale };
        const box = nearestFreeAround(w, h, [centre[0] - w / 2, centre[1] - h / 2], graph.nodes.map(nodeBox), view);
        node.pos = [Math.round(box.x), Math.round(box.y + title)];
      }
      graph.add(node);
      arrangeNode(node);
      history.check();
      return String(node.id);
    },
    connect(fromId: string, fromSlot: number, toId: string, toSlot: number): boolean {
      const from = nodeById(graph, fromId);
      const to = nodeById(graph, toId);
      if (!from || !to || !from.outputs[fromSlot] || !to.inputs[toSlot]) return false;
      const link = from.connect(fromSlot, to, toSlot);
      if (link) history.check();
      return link !== null;
    },
    setWidget(nodeId: string, widget: string, value: unknown): void {
      const node = nodeById(graph, nodeId);
      if (!node) throw new Error(`no node ${nodeId}`);
      setNodeWidget(node, widget, value);
      canvas.setDirty(true, false);
      history.schedule();
    },
    slotPosition: (nodeId, kind, slot) => slotClientPosition(canvas, graph, el, nodeId, kind, slot),
    widgetPosition: (nodeId, widget) => widgetClientPosition(canvas, graph, el, nodeId, widget),
    imageBox(nodeId, index = 0) {
      const node = nodeById(graph, nodeId);
      const r = node ? images.rect(nodeId, index) : null;
      if (!node || !r) return null;
      const [x, y] = canvas.ds.convertOffsetToCanvas([node.pos[0] + r.x, node.pos[1] + r.y]);
      const box = el.getBoundingClientRect();
      return { x: box.left + (x ?? 0), y: box.top + (y ?? 0), width: r.w * canvas.ds.scale, height: r.h * canvas.ds.scale };
    },
    pairSplit: (nodeId) => images.split(nodeId),
    pairCaptions: (nodeId) => images.captions(nodeId),

    nodeBox(nodeId) {
      const node = nodeById(graph, nodeId);
      if (!node) return null;
      const b = nodeBox(node);
      const [x, y] = canvas.ds.convertOffsetToCanvas([b.x, b.y]);
      const rect = el.getBoundingClientRect();
      return { x: rect.left + (x ?? 0), y: rect.top + (y ?? 0), width: b.w * canvas.ds.scale, height: b.h * canvas.ds.scale };
    },
    graphPoint,
    imageNodeAt(clientX, clientY) {
      const p = graphPoint(clientX, clientY);
      const node = p ? graph.getNodeOnPos(p[0], p[1], canvas.visible_nodes) : null;
      return node && imageWidgetOf(node) ? String(node.id) : null;
    },
    selectedImageNode() {
      const nodes = selectedNodes();
      return nodes.length === 1 && imageWidgetOf(nodes[0]!) ? String(nodes[0]!.id) : null;
    },
    setImage(nodeId, file) {
      const node = nodeById(graph, nodeId);
      const widget = node ? imageWidgetOf(node) : null;
      if (!node || !widget) return false;
      setNodeWidget(node, widget, file);
      canvas.setDirty(true, true);
      history.check();
      return true;
    },
    addImageNodes(type, list, at) {
      const made: LGraphNode[] = [];
      for (const image of list) {
        const node = LiteGraph.createNode(type);
        if (!node) throw new Error(`unknown node type "${type}"`);
        const widget = imageWidgetOf(node);
        if (!widget) throw new Error(`${type} takes no image file`);
        setNodeWidget(node, widget, image.file);
        made.push(node);
      }
      if (!made.length) return [];
      const title = LiteGraph.NODE_TITLE_HEIGHT;
      const sizes = made.map((node, i) => {
        const aspect = list[i]!.aspect;
        return [node.size[0], (aspect && aspect > 0 ? inputNodeHeight(node, aspect) : node.size[1]) + title] as const;
      });
      let start = at;
      if (!start) {
        // Centred on the view: the row's middle there, its nodes' tops a little above the middle.
        const centre = viewCentre();
        const width = sizes.reduce((sum, [w]) => sum + w, 0) + 30 * (sizes.length - 1);
        start = [centre[0] - width / 2, centre[1] - 120];
      }
      const boxes = placeInRow(sizes, [start[0], start[1] - title], graph.nodes.map(nodeBox));
      made.forEach((node, i) => {
        node.pos = [Math.round(boxes[i]!.x), Math.round(boxes[i]!.y + title)];
        graph.add(node);
        arrangeNode(node);
      });
      canvas.setDirty(true, true);
      history.check();
      return made.map((n) => String(n.id));
    },
    besideNode(nodeId) {
      const node = nodeById(graph, nodeId);
      return node ? [node.pos[0] + node.size[0] + 30, node.pos[1]] : null;
    },
    refreshOptions(next) {
      catalogue = new Map(next.nodes.map((n) => [n.id, n]));
      if (refreshComboOptions(graph, next)) canvas.setDirty(true, false);
    },
    imageFooter: (nodeId) => images.footer(nodeId),
    onPickImage(listener) {
      pickListeners.add(listener);
      return () => pickListeners.delete(listener);
    },
    packEstimate(nodeId) {
      const node = nodeById(graph, nodeId);
      return node ? shownEstimate(canvas, el, node) : null;
    },

    setRunState(nodeId, patch): void {
      states.patch(nodeId, patch);
      canvas.setDirty(true, true);
    },
    runState: (nodeId) => states.get(nodeId),
    resetRunState(keepImages = false): void {
      states.reset(keepImages);
      canvas.setDirty(true, true);
    },
    showIssues(issues): void {
      states.showIssues(issues);
      canvas.setDirty(true, true);
    },
    fitView(): void {
      const rect = el.getBoundingClientRect();
      const boxes = [
        ...graph.nodes.map((node) => { arrangeNode(node); return nodeBox(node); }),
        ...graph.groups.map((g) => ({ x: g.pos[0], y: g.pos[1], w: g.size[0], h: g.size[1] })),
      ];
      fitView(canvas, boxes, rect.width, rect.height);
    },
    focusNode(nodeId: string): void {
      const node = nodeById(graph, nodeId);
      if (!node) return;
      canvas.centerOnNode(node);
      canvas.selectItems([node]);
      canvas.setDirty(true, true);
    },

    undo: () => restore(history.undo()),
    redo: () => restore(history.redo()),
    copySelection(): boolean {
      return clipboard.copy();
    },
    paste(): void {
      if (clipboard.paste(pointer.graphPointer()).length) history.check();
    },
    deleteSelection(): void {
      if (!canvas.selectedItems.size) return;
      canvas.deleteSelected();
      history.check();
    },
    groupSelection(title = 'Group'): void {
      const nodes = selectedNodes();
      if (!nodes.length) return;
      const group = new LGraphGroup(title);
      graph.add(group);
      group.resizeTo(nodes, 12);
      canvas.setDirty(true, true);
      history.check();
    },

    onChange(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    onImageClick(listener) {
      imageListeners.add(listener);
      return () => imageListeners.delete(listener);
    },
    destroy(): void {
      history.dispose();
      pointer.stop();
      stopResize();
      (canvas.search_box as (HTMLDivElement & { close?: () => void }) | undefined)?.close?.();
      canvas.stopRendering();
      canvas.unbindEvents();
      graph.clear();
      changeListeners.clear();
      imageListeners.clear();
      pickListeners.clear();
      cache.clear();
    },
  };
  canvas.getMenuOptions = () => canvasMenu(canvas, selectedNodes().length, () => view.groupSelection());
  history.reset();
  canvas.startRendering();
  return view;
}

/** What counts as an edit: the graph without the view (pan and zoom are not edits). */
function fingerprint(wf: Workflow): string {
  const { ds: _ds, ...extra } = wf.extra;
  return JSON.stringify({ ...wf, extra });
}
