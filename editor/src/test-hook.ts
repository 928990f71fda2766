import type { EngineEvent, Workflow } from '../../server/protocol/index.ts';
import type { GraphView } from './graph/graph-view.ts';
import type { Studio } from './state/studio.svelte.ts';

/** What end-to-end tests read from `window.__studio`. */
export interface StudioHook {
  /** True once the catalogue is loaded and the initial workflow is on the canvas. */
  readonly ready: boolean;
  readonly graph: GraphView;
  /** The canvas as a workflow document (graph.serialize()). */
  workflow(): Workflow;
  /** The id of the last prompt this tab queued. */
  readonly lastPromptId: string | null;
  /** The last 500 text events from the websocket, oldest first. */
  readonly events: EngineEvent[];
  /** 0..1: nodes done / nodes to run of the running (or last) prompt, with the running node's share. */
  overallProgress(): number;
  /** The image viewer's state (open, compare, layout), to drive it without a run. */
  readonly viewer: Studio['viewer'];
}

declare global {
  interface Window {
    __studio?: StudioHook;
  }
}

export function installTestHook(studio: Studio): () => void {
  const hook: StudioHook = {
    get ready() {
      return studio.ready;
    },
    get graph() {
      if (!studio.graph) throw new Error('the canvas is not ready');
      return studio.graph;
    },
    workflow: () => hook.graph.serialize(),
    get lastPromptId() {
      return studio.lastPromptId;
    },
    get events() {
      return studio.events;
    },
    overallProgress: () => studio.overallProgress,
    get viewer() {
      return studio.viewer;
    },
  };
  window.__studio = hook;
  return () => {
    if (window.__studio === hook) delete window.__studio;
  };
}
