import type { HistoryEntry, QueueItem } from '../../../server/protocol/index.ts';
import { api, viewUrl } from '../api/client.ts';
import type { ViewerImage } from './viewer.svelte.ts';

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
  /** Every output image of the history, newest first, for the viewer's strip. */
  outputs = $derived(this.history.flatMap(entryImages));
  /** Prompts seen starting, so a late POST answer does not list a started prompt as pending. */
  #started = new Set<string>();
  #queueTimer: ReturnType<typeof setTimeout> | null = null;
  #historyTimer: ReturnType<typeof setTimeout> | null = null;

  setStatus(remaining: number, running: string | null): void {
    this.remaining = remaining;
    this.runningId = running;
    this.scheduleQueueRefresh();
  }

  /** A prompt this tab queued, shown before the next GET /api/queue confirms it. */
  addPending(item: QueueItem, front: boolean): void {
    if (this.#started.has(item.id) || this.pending.some((p) => p.id === item.id)) return;
    this.pending = front ? [item, ...this.pending] : [...this.pending, item];
  }

  /** prompt_start: the prompt leaves the pending list (the server may be too busy to answer a GET). */
  markStarted(id: string, number: number | null = null): void {
    this.#started.add(id);
    if (this.#started.size > 100) this.#started.delete(this.#started.values().next().value!);
    const item = this.pending.find((p) => p.id === id);
    this.running = item ?? (this.running?.id === id ? this.running : { id, number: number ?? 0, client_id: null, created_at: Date.now() });
    this.pending = this.pending.filter((p) => p.id !== id);
    this.runningId = id;
  }

  markFinished(id: string): void {
    if (this.running?.id === id) this.running = null;
    if (this.runningId === id) this.runningId = null;
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

/** The images a finished prompt wrote, as the viewer shows them. */
export function entryImages(entry: HistoryEntry): ViewerImage[] {
  return Object.values(entry.outputs).flatMap((files) =>
    files.map((f) => ({ url: viewUrl(f, entry.id.slice(0, 8)), label: `#${entry.number} · ${f.filename.split('/').pop() ?? f.filename}` })),
  );
}
