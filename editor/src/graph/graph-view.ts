import type { NodeCatalogueJson, ValidationIssue, Workflow } from '../../../server/protocol/index.ts';

/** What the canvas shows about one node while and after a prompt runs. */
export type NodeRunStatus = 'idle' | 'queued' | 'running' | 'done' | 'cached' | 'error';

export interface NodeRunState {
  status: NodeRunStatus;
  /** 0..1 while running with progress, else null. */
  progress: number | null;
  /** Output images (URLs from /api/view) shown inside the node, newest last. */
  images: string[];
  /** Live preview (object URL of a binary preview frame) shown while running. */
  preview: string | null;
  /** Error text shown on the node (validation or execution). */
  error: string | null;
  /** Captions of `images`, by index ('' for none): a sweep's branch values, Compare's A and B. */
  labels?: string[];
  /** Two of the images to compare (Compare Images): drawn under an A/B split, opened in compare mode. */
  compare?: ComparePair | null;
  /** For a swept node: how many of its branches have finished, of how many ran. */
  branches?: { settled: number; total: number } | null;
}

export interface ComparePair {
  a: string;
  b: string;
  labelA: string;
  labelB: string;
}

/**
 * The canvas, seen from the app: the only code that touches litegraph is under editor/src/graph/,
 * behind this interface. Node ids are strings, as in the API.
 */
export interface GraphView {
  /** Registers node classes from GET /api/nodes (again when the catalogue changes). */
  setCatalogue(catalogue: NodeCatalogueJson): void;
  load(workflow: Workflow): void;
  serialize(): Workflow;
  clear(): void;
  /** Adds a node of `type` at canvas coordinates (default: the centre of the view); returns its id. */
  addNode(type: string, pos?: [number, number]): string;
  connect(fromId: string, fromSlot: number, toId: string, toSlot: number): boolean;
  setWidget(nodeId: string, widget: string, value: unknown): void;
  /** Client (page) coordinates of a slot's connection dot, for pointer-driven tests and tours. */
  slotPosition(nodeId: string, kind: 'input' | 'output', slot: number): [number, number] | null;
  /** Client coordinates of the middle of a node's widget row, for pointer-driven tests. */
  widgetPosition(nodeId: string, widget: string): [number, number] | null;
  /** Client coordinates and size of the `index`th image drawn in a node (a pair counts as one), for pointer-driven tests. */
  imageBox(nodeId: string, index?: number): { x: number; y: number; width: number; height: number } | null;
  /** Where a Compare node's A/B split is on the node, 0..1 (null: no pair drawn there). */
  pairSplit(nodeId: string): number | null;

  /** Execution overlay: the app feeds engine events in, the canvas draws them. */
  setRunState(nodeId: string, patch: Partial<NodeRunState>): void;
  runState(nodeId: string): NodeRunState;
  resetRunState(keepImages?: boolean): void;
  /** Validation errors from POST /api/prompt, marked on their nodes (and cleared with []). */
  showIssues(issues: ValidationIssue[]): void;
  /** Centres the view on a node (used when an error points at one). */
  focusNode(nodeId: string): void;

  undo(): void;
  redo(): void;
  copySelection(): void;
  paste(): void;
  deleteSelection(): void;
  /** Groups the selected nodes (Ctrl+G). */
  groupSelection(title?: string): void;

  /** Called after every user edit (for autosave and the dirty flag). */
  onChange(listener: () => void): () => void;
  /** Called when the user clicks an image inside a node (the app opens the viewer). */
  onImageClick(listener: (nodeId: string, url: string) => void): () => void;
  destroy(): void;
}
