import type { ErrorCode } from '../../nodes/api/errors.ts';
import type { FileRef } from '../../nodes/api/file-ref.ts';

/** How a prompt ended. */
export type PromptStatus = 'success' | 'error' | 'interrupted' | 'cancelled';

/**
 * Which sweep branch a node copy belongs to (server/engine/sweep.ts): the id of the node it was
 * copied from, the branch number (x varies fastest) and the branch's values as a caption,
 * `"cfg_scale=4, control_scale=0.5"`. Events and history entries carry it so that a client can
 * label a branch without reading the workflow, which may have changed since it was queued.
 */
export interface BranchInfo {
  of: string;
  index: number;
  label: string;
}

/** What the executor says about a failing node: enough to point at it and show its inputs. */
export interface NodeErrorInfo {
  node_id: string;
  node_type: string;
  node_title: string;
  code: ErrorCode;
  message: string;
  /** The values the node was given: literals as they were, tensors as shape summaries. */
  inputs: Record<string, unknown>;
  /** For a sweep branch's copy of a node: which branch (absent for plain nodes). */
  branch?: BranchInfo;
}

/**
 * Everything the engine tells the world, as one tagged union. The websocket sends these as JSON
 * (`preview` as a binary frame), the CLI and the history subscribe to the same stream. Events
 * about a sweep branch's copy of a node (`node_start`, `progress`, `node_done`, `error`) carry
 * `branch`.
 */
export type EngineEvent =
  | { type: 'status'; queue_remaining: number; running: string | null }
  /** `worker`: with `serve --queue`, the worker (server/scale) that runs this attempt of the prompt. */
  | { type: 'prompt_start'; prompt_id: string; number: number | null; nodes: string[]; worker?: string }
  | { type: 'cached'; prompt_id: string; nodes: string[] }
  | { type: 'node_start'; prompt_id: string; node_id: string; node_type: string; branch?: BranchInfo }
  | {
      type: 'progress';
      prompt_id: string;
      node_id: string;
      value: number;
      max: number;
      /** Milliseconds the node has left at its pace so far (server/engine/eta.ts); absent until a pace is known. */
      eta_ms?: number;
      branch?: BranchInfo;
    }
  | { type: 'node_done'; prompt_id: string; node_id: string; cached: boolean; ms: number; files: FileRef[]; branch?: BranchInfo }
  | ({ type: 'error'; prompt_id: string } & NodeErrorInfo)
  | { type: 'interrupted'; prompt_id: string; node_id: string | null }
  | { type: 'warning'; prompt_id: string; node_id: string; message: string }
  | {
      /**
       * A batch's images (Load Images (folder), server/engine/batch.ts): sent when the run starts,
       * when an image starts and when it ends. `resumed` images had all their outputs already.
       */
      type: 'batch';
      prompt_id: string;
      /** The node that listed the batch. */
      node_id: string;
      total: number;
      done: number;
      resumed: number;
      failed: number;
      /** The image running now, relative to the batch's folder; null between images. */
      running: string | null;
      /** Milliseconds the images left need at the pace so far; absent until one image ran. */
      eta_ms?: number;
    }
  | { type: 'prompt_done'; prompt_id: string; status: PromptStatus; ms: number }
  | {
      type: 'preview';
      prompt_id: string;
      node_id: string;
      format: 'jpeg' | 'png';
      width: number;
      height: number;
      /** The sampling step (0-based) the preview shows, when the node has steps. */
      step?: number;
      bytes: Uint8Array;
    };

export type EngineEventType = EngineEvent['type'];
