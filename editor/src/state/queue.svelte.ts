import type { HistoryEntry, QueueItem } from '../../../server/protocol/index.ts';
import { api } from '../api/client.ts';

/** How many finished prompts the panel keeps (the server keeps many more). */
const HISTORY_ITEMS = 200;

/** The server's queue (running + pending) and history, refreshed when the event stream says so. */
export class QueueState {
  running = $state.raw<QueueItem | null>(null);
  pending = $state.raw<QueueItem[]>([]);
  /** Newest first. */
  history = $state.raw<HistoryEntry[]>([]);
  /** Pending + running, as the last status event said. */
  remaining = $state.raw(0);
  runningId = $state.raw<string | null>(null);
  panelOpen = $state.raw(false);
  #queueTimer: ReturnType<typeof setTimeout> | null = null;
  #historyTimer: ReturnType<typeof setTimeout> | null = null;

  setStatus(remaining: number, running: string | null): void {
    this.remaining = remaining;
    this.runningId = running;
    this.scheduleQueueRefresh();
  }

  togglePanel(open = !this.panelOpen): void {
    this.panelOpen = open;
  }

  async refreshQueue(): Promise<void> {
    const snap = await api.queue();
    this.running = snap.running;
    this.pending = snap.pending;
    this.remaining = snap.pending.length + (snap.running ? 1 : 0);
    this.runningId = snap.running?.id ?? null;
  }

  async refreshHistory(): Promise<void> {
    const list = await api.history(HISTORY_ITEMS);
    this.history = list.slice().reverse();
  }

  /** Coalesces bursts of status events into one GET /api/queue. */
  scheduleQueueRefresh(): void {
    if (this.#queueTimer) return;
    this.#queueTimer = setTimeout(() => {
      this.#queueTimer = null;
      this.refreshQueue().catch(() => {});
    }, 80);
  }

  scheduleHistoryRefresh(): void {
    if (this.#historyTimer) return;
    this.#historyTimer = setTimeout(() => {
      this.#historyTimer = null;
      this.refreshHistory().catch(() => {});
    }, 120);
  }

  async cancel(id: string): Promise<void> {
    this.pending = this.pending.filter((p) => p.id !== id);
    await api.cancel(id).finally(() => {
      this.scheduleQueueRefresh();
      this.scheduleHistoryRefresh();
    });
  }

  async clearPending(): Promise<void> {
    this.pending = [];
    await api.clearQueue().finally(() => {
      this.scheduleQueueRefresh();
      this.scheduleHistoryRefresh();
    });
  }

  async deleteEntry(id: string): Promise<void> {
    this.history = this.history.filter((h) => h.id !== id);
    await api.deleteHistory(id);
  }

  async clearHistory(): Promise<void> {
    this.history = [];
    await api.clearHistory();
  }
}
