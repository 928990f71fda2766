import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { BranchInfo, NodeErrorInfo, PromptStatus } from './events.ts';
import type { ApiPrompt } from './prompt.ts';

export interface QueueItem {
  id: string;
  number: number;
  client_id: string | null;
  created_at: number;
}

export interface HistoryEntry extends QueueItem {
  status: PromptStatus;
  started_at: number | null;
  finished_at: number;
  executed: string[];
  cached: string[];
  timings_ms: Record<string, number>;
  outputs: Record<string, FileRef[]>;
  error: NodeErrorInfo | null;
  /**
   * For a prompt with a Sweep: every branch copy of a node that the run reached (in `executed`,
   * `cached` or the error), by its id `<node id>:<branch>`. Absent for prompts without branches.
   */
  branches?: Record<string, BranchInfo>;
  prompt: ApiPrompt;
  workflow: unknown;
  /** With `serve --queue` (server/scale): the worker that ran the prompt to its end, and every worker that started it. */
  worker?: string;
  workers?: string[];
  /** With `serve --queue`: how many times a worker started the prompt (more than 1 after a worker died mid-run). */
  attempts?: number;
  /** For a batch (Load Images (folder)): its images and how each ended. */
  batch?: HistoryBatch;
  /** Set in GET /api/history lists where the prompt and workflow are large and kept apart: GET /api/history/:id has them. */
  stored_apart?: { bytes: number; error?: string };
}

/** How one image of a batch ended. `not run`: the run stopped (Stop, or a shared node failed) first. */
export type HistoryBatchItemStatus = 'done' | 'resumed' | 'failed' | 'not run';

export interface HistoryBatchItem {
  index: number;
  /** 1-based position in the folder's sorted list (`{index}`). */
  position: number;
  /** The file relative to the batch's folder. */
  source: string;
  status: HistoryBatchItemStatus;
  /** Milliseconds the image took (absent unless it ran). */
  ms?: number;
  /** Files its output nodes wrote (or, resumed, had written before). */
  files: FileRef[];
  error?: string;
  /** With `serve --queue`: the worker that ran the image to its end, and how many times workers started it. */
  worker?: string;
  attempts?: number;
}

/** A batch's images as a run left them. */
export interface HistoryBatch {
  node: string;
  total: number;
  done: number;
  resumed: number;
  failed: number;
  items: HistoryBatchItem[];
}
