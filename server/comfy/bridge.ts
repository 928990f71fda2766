/**
 * What the ComfyUI-compatible routes and websocket share: for each prompt queued in ComfyUI's
 * shape, which ComfyUI node each of our nodes came from (so that events and history name the
 * ComfyUI ids a client script knows) and which client queued it. Kept in memory for the last
 * prompts; after a restart the ids come from the workflow stored with the history entry.
 */
import type { FileRef } from '../../nodes/api/file-ref.ts';

const KEEP = 1000;

export interface ComfyImageRef {
  filename: string;
  subfolder: string;
  type: 'output' | 'input' | 'temp';
}

export class ComfyBridge {
  readonly #prompts = new Map<string, { ids: Record<string, string>; clientId: string | null }>();

  remember(promptId: string, ids: Record<string, string>, clientId: string | null): void {
    this.#prompts.set(promptId, { ids, clientId });
    if (this.#prompts.size > KEEP) this.#prompts.delete(this.#prompts.keys().next().value!);
  }

  /** The ComfyUI id of one of our nodes (a sweep branch copy `7:2` is its node's), or the id itself. */
  comfyId(promptId: string, ourId: string, stored?: Record<string, string>): string {
    const ids = this.#prompts.get(promptId)?.ids ?? stored;
    const base = ourId.split(':')[0]!;
    return ids?.[ourId] ?? ids?.[base] ?? ourId;
  }

  clientOf(promptId: string): string | null {
    return this.#prompts.get(promptId)?.clientId ?? null;
  }
}

const FOLDER_TYPES = { outputs: 'output', inputs: 'input', temp: 'temp' } as const;

/** Our file reference as ComfyUI names an image: file name, subfolder, folder type. */
export function comfyImage(ref: FileRef): ComfyImageRef | undefined {
  const type = (FOLDER_TYPES as Record<string, ComfyImageRef['type'] | undefined>)[ref.folder];
  if (!type) return undefined;
  const cut = ref.filename.lastIndexOf('/');
  return { filename: ref.filename.slice(cut + 1), subfolder: cut < 0 ? '' : ref.filename.slice(0, cut), type };
}

/** ComfyUI's `type` query value → our data folder. */
export function folderOfType(type: string | undefined): 'outputs' | 'inputs' | 'temp' | undefined {
  if (type === undefined || type === '' || type === 'output') return 'outputs';
  if (type === 'input') return 'inputs';
  if (type === 'temp') return 'temp';
  return undefined;
}
