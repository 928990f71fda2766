import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { NodeErrorInfo, PromptStatus } from './events.ts';
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
  prompt: ApiPrompt;
  workflow: unknown;
}
