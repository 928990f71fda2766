import type { EventHub } from './events.ts';
import type { JournalHealth, StoredHistoryEntry } from './journal.ts';
import type { HistoryEntry, QueueItem, SubmitRequest, SubmitResult } from './queue.ts';

/**
 * What the HTTP routes, the websocket server and the CLI ask of a prompt queue. Two
 * implementations: the embedded one (server/engine/queue.ts, prompts run in this process) and the
 * scale-out one (server/scale/remote-queue.ts, prompts run by `supir-studio worker` processes
 * through BullMQ on Redis).
 */
export interface PromptQueueApi {
  readonly events: EventHub;
  submit(req: SubmitRequest): SubmitResult;
  /** Resolves once prompt `id` is stored durably; rejects when it could not be (it was then withdrawn). */
  persisted(id: string): Promise<void>;
  /** Null when prompts can be queued durably now; otherwise why not. */
  storageProblem(): Promise<string | null>;
  storage(): JournalHealth | null;
  historyBody(entry: StoredHistoryEntry): Promise<Buffer>;
  stop(): Promise<void>;
  list(): { running: QueueItem | null; pending: QueueItem[] };
  cancel(id: string): boolean;
  clearPending(): number;
  interrupt(id?: string): boolean;
  history(): StoredHistoryEntry[];
  historyEntry(id: string): StoredHistoryEntry | undefined;
  deleteHistory(id?: string): void;
  whenDone(id: string): Promise<HistoryEntry>;
  /** The scale-out queue's state for GET /api/system (absent for the embedded queue). */
  scaleInfo?(): Promise<unknown>;
}
