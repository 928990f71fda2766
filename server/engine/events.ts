import type { FileRef } from '../../nodes/api/define.ts';
import type { ErrorCode } from '../../nodes/api/errors.ts';

/** How a prompt ended. */
export type PromptStatus = 'success' | 'error' | 'interrupted' | 'cancelled';

/** What the executor says about a failing node: enough to point at it and show its inputs. */
export interface NodeErrorInfo {
  node_id: string;
  node_type: string;
  node_title: string;
  code: ErrorCode;
  message: string;
  /** The values the node was given: literals as they were, tensors as shape summaries. */
  inputs: Record<string, unknown>;
}

/**
 * Everything the engine tells the world, as one tagged union. The websocket sends these as JSON
 * (`preview` as a binary frame), the CLI and the history subscribe to the same stream.
 */
export type EngineEvent =
  | { type: 'status'; queue_remaining: number; running: string | null }
  | { type: 'prompt_start'; prompt_id: string; nodes: string[] }
  | { type: 'cached'; prompt_id: string; nodes: string[] }
  | { type: 'node_start'; prompt_id: string; node_id: string; node_type: string }
  | { type: 'progress'; prompt_id: string; node_id: string; value: number; max: number }
  | { type: 'node_done'; prompt_id: string; node_id: string; cached: boolean; ms: number; files: FileRef[] }
  | ({ type: 'error'; prompt_id: string } & NodeErrorInfo)
  | { type: 'interrupted'; prompt_id: string; node_id: string | null }
  | { type: 'prompt_done'; prompt_id: string; status: PromptStatus; ms: number }
  | {
      type: 'preview';
      prompt_id: string;
      node_id: string;
      format: 'jpeg' | 'png';
      width: number;
      height: number;
      bytes: Uint8Array;
    };

export type EngineEventType = EngineEvent['type'];

/** Where events go. Transports implement it; the engine never knows who listens. */
export interface EventSink {
  emit(event: EngineEvent): void;
  /** False when nobody would see a preview, so the executor can skip encoding it. */
  wantsPreviews?(): boolean;
}

/** A sink that forwards to any number of subscribers. */
export class EventHub implements EventSink {
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  private previewListeners = 0;

  subscribe(listener: (event: EngineEvent) => void, opts: { previews?: boolean } = {}): () => void {
    const wrapped = (e: EngineEvent): void => listener(e);
    this.listeners.add(wrapped);
    if (opts.previews) this.previewListeners++;
    return () => {
      if (this.listeners.delete(wrapped) && opts.previews) this.previewListeners--;
    };
  }

  emit(event: EngineEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  wantsPreviews(): boolean {
    return this.previewListeners > 0;
  }
}
