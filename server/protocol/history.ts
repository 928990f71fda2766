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
  /** Set in GET /api/history lists where the prompt and workflow are large and kept apart: GET /api/history/:id has them. */
  stored_apart?: { bytes: number; error?: string };
}
