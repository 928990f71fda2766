import type { NodeCatalogueJson, ValidationIssue, Workflow } from '../../../server/protocol/index.ts';

/** What the canvas shows about one node while and after a prompt runs. */
export type NodeRunStatus = 'idle' | 'queued' | 'running' | 'done' | 'cached' | 'error';

export interface NodeRunState {
  status: NodeRunStatus;
  /** 0..1 while running with progress, else null. */
  progress: number | null;
  /** Milliseconds the running node has left at its pace so far (the server's estimate), when known. */
  eta?: number | null;
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
  branches?: { settled: number; total: number; unit?: 'images' } | null;
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
  /** The captions last drawn on a node's A/B pair ("A" alone for an unlabelled side), or null. */
  pairCaptions(nodeId: string): [string, string] | null;
  /** The memory estimate line last drawn on a Load SUPIR Model node, with its client box (null: none drawn). */
  packEstimate(nodeId: string): { text: string; lines: string[]; box: { x: number; y: number; width: number; height: number } } | null;

  /** Client coordinates and size of a node as drawn now (title bar included, grown for its images). */
  nodeBox(nodeId: string): { x: number; y: number; width: number; height: number } | null;
  /** Graph coordinates of a page point over the canvas, or null when the point is not over it. */
  graphPoint(clientX: number, clientY: number): [number, number] | null;
  /** The node under a page point that takes an image file (Load Image, its image not linked), or null. */
  imageNodeAt(clientX: number, clientY: number): string | null;
  /** The one selected node that takes an image file, or null. */
  selectedImageNode(): string | null;
  /** Sets the image file of a node that takes one; false when it takes none. */
  setImage(nodeId: string, file: string): boolean;
  /**
   * Adds one `type` node (Load Image) per image, its image set, left to right from `at` (graph
   * units; default: the middle of the view), each where it covers no other node once its image
   * shows (`aspect` = width / height, when known). Returns their ids.
   */
  addImageNodes(type: string, images: ReadonlyArray<{ file: string; aspect: number | null }>, at?: [number, number]): string[];
  /** Graph coordinates right of a node, top-aligned with it (where the images after the first go). */
  besideNode(nodeId: string): [number, number] | null;
  /** Gives every combo the values the catalogue lists now (the image list after an upload). */
  refreshOptions(catalogue: NodeCatalogueJson): void;
  /** The text last drawn under a node's input image (its size, "1411 x 1411"), or null. */
  imageFooter(nodeId: string): string | null;
  /** Called when a node's "choose file to upload" button is pressed. */
  onPickImage(listener: (nodeId: string) => void): () => void;

  /** Execution overlay: the app feeds engine events in, the canvas draws them. */
  setRunState(nodeId: string, patch: Partial<NodeRunState>): void;
  runState(nodeId: string): NodeRunState;
  resetRunState(keepImages?: boolean): void;
  /** Validation errors from POST /api/prompt, marked on their nodes (and cleared with []). */
  showIssues(issues: ValidationIssue[]): void;
  /** Scales and centres the view so that every node (and group) is inside the canvas. */
  fitView(): void;
  /** Centres the view on a node (used when an error points at one). */
  focusNode(nodeId: string): void;

  undo(): void;
  redo(): void;
  /** Copies the selected nodes to the editor's clipboard; false when nothing is selected. */
  copySelection(): boolean;
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
