import type { EngineEvent } from '../protocol/events.ts';

export type { BranchInfo, EngineEvent, EngineEventType, NodeErrorInfo, PromptStatus } from '../protocol/events.ts';

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
