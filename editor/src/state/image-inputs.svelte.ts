import { FORMAT_NAMES, sniffImageFormat, type ImageFormat } from '../../../nodes/image/format.ts';
import { api, ApiError, type UploadResult } from '../api/client.ts';
import { isPng, readPngText } from '../api/png-workflow.ts';
import type { GraphView } from '../graph/graph-view.ts';
import type { CatalogueState } from './catalogue.svelte.ts';
import type { DocumentState } from './documents.svelte.ts';
import type { ErrorState } from './errors.svelte.ts';
import { formatBytes, type SystemState } from './system.svelte.ts';

/** The node a dropped or pasted image becomes. */
export const LOAD_IMAGE = 'LoadImage';
/** What Load Image lists (nodes/image/load.ts IMAGE_EXTENSIONS), so what the server takes. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'] as const;
const EXTENSION_OF: Partial<Record<ImageFormat, string>> = { png: '.png', jpeg: '.jpg', webp: '.webp', tiff: '.tif' };
const TAKES = 'PNG, JPEG, WebP or TIFF';
/** Other tabs of this editor hear of new input files here and refresh their lists. */
const CHANNEL = 'supir-studio.inputs';

/** One file on its way to the server. */
export interface Upload {
  id: number;
  name: string;
  sent: number;
  total: number;
}

/** Where images go: into a node that takes one, else new Load Image nodes at a graph point (or the view's middle). */
export interface ImageTarget {
  nodeId: string | null;
  at: [number, number] | null;
}

interface Deps {
  graph: () => GraphView | null;
  catalogue: CatalogueState;
  system: SystemState;
  errors: ErrorState;
  documents: DocumentState;
}

/**
 * Images into the graph: the Load Image button's file picker, files dropped on a node or the
 * canvas, images pasted from the clipboard. Each file is uploaded (with progress), every image
 * list in every open tab is refreshed, and the image goes into the node it was meant for or into a
 * new Load Image node. What the server refuses is said with the file's name.
 */
export class ImageInputs {
  uploads = $state.raw<Upload[]>([]);
  #deps: Deps;
  #nextId = 1;
  #picker: HTMLInputElement | null = null;
  #pickFor: string | null = null;
  #channel: BroadcastChannel | null = null;
  #refreshing: Promise<void> | null = null;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /**
   * Listens to the other tabs (their uploads refresh the lists here) and to the window getting the
   * focus back (files uploaded by a script or copied into inputs/ meanwhile). Refreshes that come
   * while one is under way share it.
   */
  connect(): () => void {
    const onFocus = (): void => {
      if (document.visibilityState === 'visible') void this.refreshLists();
    };
    window.addEventListener('focus', onFocus);
    document.addEventListener('visibilitychange', onFocus);
    if (typeof BroadcastChannel === 'function') {
      this.#channel = new BroadcastChannel(CHANNEL);
      this.#channel.onmessage = (e: MessageEvent<unknown>) => {
        if ((e.data as { type?: unknown } | null)?.type === 'inputs-changed') void this.refreshLists();
      };
    }
    return () => {
      window.removeEventListener('focus', onFocus);
      document.removeEventListener('visibilitychange', onFocus);
      this.#channel?.close();
      this.#channel = null;
    };
  }

  /** The hidden file input the nodes' upload buttons open. */
  attachPicker(input: HTMLInputElement): void {
    this.#picker = input;
  }

  /** A node's "choose file to upload" button: opens the file picker for that node. */
  pick(nodeId: string | null): void {
    if (!this.#picker) return;
    this.#pickFor = nodeId;
    this.#picker.value = '';
    this.#picker.click();
  }

  /** What the picker returned: the first file into the node, any others into new nodes beside it. */
  async picked(files: File[]): Promise<void> {
    const nodeId = this.#pickFor;
    this.#pickFor = null;
    if (files.length) await this.load(files, { nodeId, at: null });
  }

  /**
   * Files dropped at a page point. A workflow (.json, or a PNG that holds one) opens, after the
   * discard prompt; images go into the Load Image node under the point (the first; the others
   * beside it) or become Load Image nodes there.
   */
  async drop(files: File[], clientX: number, clientY: number): Promise<void> {
    const graph = this.#deps.graph();
    const target: ImageTarget = { nodeId: graph?.imageNodeAt(clientX, clientY) ?? null, at: graph?.graphPoint(clientX, clientY) ?? null };
    const { workflows, images, refused } = await sortFiles(files);
    for (const message of refused) this.#deps.errors.notify('error', message);
    if (workflows.length) {
      const [first, ...rest] = workflows;
      if (rest.length) this.#deps.errors.notify('info', `Opened ${first!.name} only: drop one workflow at a time.`);
      await this.#deps.documents.importFile(first!);
    }
    if (images.length) await this.load(images, target);
  }

  /** Images pasted from the clipboard: into the selected Load Image node, else new nodes at the pointer. */
  async paste(files: File[], pointer: { x: number; y: number } | null): Promise<void> {
    const graph = this.#deps.graph();
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const named = files.map((f, i) => {
      const ext = EXTENSION_OF[formatOfType(f.type) ?? 'png'] ?? '.png';
      return new File([f], `pasted-${stamp}${files.length > 1 ? `-${i + 1}` : ''}${ext}`, { type: f.type });
    });
    const at = pointer ? (graph?.graphPoint(pointer.x, pointer.y) ?? null) : null;
    await this.load(named, { nodeId: graph?.selectedImageNode() ?? null, at });
  }

  /**
   * Uploads `files` one after the other and puts each into the graph: the first into the target
   * node, when there is one; the others into new Load Image nodes, laid out in a row that covers
   * no other node. Returns the ids of the nodes that got an image.
   */
  async load(files: File[], target: ImageTarget): Promise<string[]> {
    const done: string[] = [];
    let nodeId = target.nodeId;
    let at = target.at;
    let uploaded = false;
    for (const file of files) {
      const result = await this.#upload(file);
      if (!result) continue;
      uploaded = true;
      await this.refreshLists();
      const graph = this.#deps.graph();
      if (!graph) continue;
      const image = { file: result.subfolder ? `${result.subfolder}/${result.name}` : result.name, aspect: result.width / result.height };
      if (nodeId && graph.setImage(nodeId, image.file)) {
        done.push(nodeId);
        at = graph.besideNode(nodeId) ?? at;
        nodeId = null;
        continue;
      }
      nodeId = null;
      const [id] = graph.addImageNodes(LOAD_IMAGE, [image], at ?? undefined);
      if (id) {
        done.push(id);
        this.#deps.documents.noteAdded();
        at = graph.besideNode(id) ?? at;
      }
    }
    if (uploaded) this.#channel?.postMessage({ type: 'inputs-changed' });
    return done;
  }

  /** Reads the lists again (GET /api/nodes) and gives every combo on the canvas the new values. */
  refreshLists(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const data = await this.#deps.catalogue.load();
        this.#deps.graph()?.refreshOptions(data);
      } catch {
        // The server is away: the lists stay as they are, the next focus or upload tries again.
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  /** One upload, with progress; null (and a message naming the file) when it cannot be stored. */
  async #upload(file: File): Promise<UploadResult | null> {
    const notify = (text: string): null => {
      this.#deps.errors.notify('error', text);
      return null;
    };
    const name = await uploadName(file);
    if ('refused' in name) return notify(name.refused);
    const limit = this.#deps.system.info?.limits.maxUploadBytes;
    if (limit && file.size > limit) {
      return notify(`Cannot load ${file.name}: it is ${formatBytes(file.size)}, larger than this server accepts for an upload (at most ${formatBytes(limit)}).`);
    }
    const upload: Upload = { id: this.#nextId++, name: file.name, sent: 0, total: file.size };
    this.uploads = [...this.uploads, upload];
    try {
      return await api.upload(file, name.name, {
        onProgress: (sent, total) => {
          this.uploads = this.uploads.map((u) => (u.id === upload.id ? { ...u, sent, total } : u));
        },
      });
    } catch (err) {
      const message = err instanceof ApiError ? err.message : err instanceof Error ? err.message : String(err);
      return notify(`Cannot load ${file.name}: ${message}`);
    } finally {
      this.uploads = this.uploads.filter((u) => u.id !== upload.id);
    }
  }
}

const extensionOf = (name: string): string => /\.[^./]+$/.exec(name)?.[0].toLowerCase() ?? '';
const isImageExtension = (name: string): boolean => (IMAGE_EXTENSIONS as readonly string[]).includes(extensionOf(name));

function formatOfType(type: string): ImageFormat | undefined {
  return ({ 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/webp': 'webp', 'image/tiff': 'tiff', 'image/gif': 'gif' } as const)[type];
}

async function head(file: File, bytes = 16): Promise<Uint8Array> {
  return new Uint8Array(await file.slice(0, bytes).arrayBuffer());
}

/**
 * The name a file is uploaded under: its own when Load Image lists its extension (the server
 * reads the format from the bytes anyway, and says so when they are not an image); with the
 * extension of its format when its bytes are one the server takes ("photo.jfif" → "photo.jpg");
 * otherwise refused here, since the server would refuse the name before looking at the bytes.
 */
async function uploadName(file: File): Promise<{ name: string } | { refused: string }> {
  if (isImageExtension(file.name)) return { name: file.name };
  const format = sniffImageFormat(await head(file));
  const ext = format ? EXTENSION_OF[format] : undefined;
  if (ext) return { name: `${file.name.replace(/\.[^./]*$/, '') || 'image'}${ext}` };
  const what = format ? `a ${FORMAT_NAMES[format]} image` : file.type ? `of type ${file.type}` : 'not an image of a known format';
  return { refused: `Cannot load ${file.name}: it is ${what}; Load Image takes ${TAKES} images.` };
}

/** Dropped files sorted: workflows to open, images to load, and messages for the rest. */
async function sortFiles(files: File[]): Promise<{ workflows: File[]; images: File[]; refused: string[] }> {
  const workflows: File[] = [];
  const images: File[] = [];
  const refused: string[] = [];
  for (const file of files) {
    if (/\.json$/i.test(file.name) || file.type === 'application/json') {
      workflows.push(file);
      continue;
    }
    const start = await head(file);
    if (isPng(start)) {
      // A PNG saved by Save Image (or ComfyUI) carries its workflow: that opens; any other PNG is an
      // image. A PNG with only a `prompt` chunk (an API client's output) is an image here; Import opens it.
      let text: Record<string, string> = {};
      try {
        text = await readPngText(new Uint8Array(await file.arrayBuffer()));
      } catch {
        // Unreadable chunks: the server judges the image.
      }
      (text.workflow !== undefined ? workflows : images).push(file);
      continue;
    }
    if (sniffImageFormat(start) || file.type.startsWith('image/') || isImageExtension(file.name)) {
      images.push(file);
      continue;
    }
    refused.push(`Cannot open ${file.name}: drop ${TAKES} images, or a workflow (.json, or a PNG saved by SUPIR Studio or ComfyUI).`);
  }
  return { workflows, images, refused };
}
