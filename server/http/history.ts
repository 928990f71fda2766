import { Router, type Response } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { StoredHistoryEntry } from '../engine/journal.ts';
import { createLogger } from '../log.ts';
import type { ServerContext } from './context.ts';

const log = createLogger('history');

/**
 * How many entries `GET /api/history` returns when the client does not say: the newest 200. The
 * history keeps up to `historyLimit` entries (10 000 by default), and a client that polls the list
 * must not be sent all of them every time.
 */
export const DEFAULT_HISTORY_ITEMS = 200;

/**
 * GET /api/history[?limit=N][&offset=K] (max_items is another name for limit), oldest first:
 *   - without offset, the newest N entries (200 by default);
 *   - with offset, N entries (200 by default) from position K, counted from the oldest (0), so a
 *     client reads everything with offset=0, N, 2N... until it has `X-Total-Count` entries.
 * The `X-Total-Count` header says how many entries there are. An entry whose prompt and workflow
 * are too large for the list (stored apart) comes with `"prompt": {}`, `"workflow": null` and
 * `"stored_apart": {"bytes": N}`; GET /api/history/:id gives them. The list is sent one entry at a
 * time, never as one string.
 *
 * GET /api/history/:id, DELETE /api/history (all) and DELETE /api/history/:id.
 */
export function historyRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/history', async (req, res) => {
    const all = ctx.queue.history();
    const { offset, limit } = page(req.query);
    const selected = offset === undefined ? (limit === 0 ? [] : all.slice(-limit)) : all.slice(offset, offset + limit);
    res.setHeader('X-Total-Count', String(all.length));
    await sendJsonArray(res, selected, listForm);
  });
  router.get('/api/history/:id', async (req, res) => {
    const found = entry(ctx, req.params.id);
    if (!found.body) return void res.json(found);
    const { body, prompt: _prompt, workflow: _workflow, ...rest } = found;
    let stored: Buffer;
    try {
      stored = await ctx.queue.historyBody(found);
    } catch (err) {
      log.error(`the prompt and workflow of history entry ${found.id} cannot be read`, err);
      return void res.json({ ...listForm(found), stored_apart: { bytes: body.bytes, error: `the stored prompt and workflow cannot be read: ${err instanceof Error ? err.message : String(err)}` } });
    }
    // The stored file is `{"prompt":...,"workflow":...}`: joined to the entry's other fields as
    // bytes, so a prompt of 30 MB is neither parsed nor serialized again here.
    const head = JSON.stringify(rest);
    res.type('application/json');
    res.end(Buffer.concat([Buffer.from(`${head.slice(0, -1)},`, 'utf8'), stored.subarray(1)]));
  });
  router.delete('/api/history/:id', (req, res) => {
    entry(ctx, req.params.id);
    ctx.queue.deleteHistory(req.params.id);
    res.json({ deleted: req.params.id });
  });
  router.delete('/api/history', (_req, res) => {
    const count = ctx.queue.history().length;
    ctx.queue.deleteHistory();
    res.json({ deleted: count });
  });
  return router;
}

/** An entry as the list shows it: a large prompt's body is left out and said so. */
function listForm(e: StoredHistoryEntry): object {
  if (!e.body) return e;
  const { body, ...rest } = e;
  return { ...rest, prompt: {}, workflow: null, stored_apart: { bytes: body.bytes } };
}

function page(query: Record<string, unknown>): { offset: number | undefined; limit: number } {
  if (query.limit !== undefined && query.max_items !== undefined) throw new StudioError('BAD_INPUT', 'give limit or max_items, not both');
  const limitName = query.limit !== undefined ? 'limit' : 'max_items';
  const limit = count(query[limitName], limitName) ?? DEFAULT_HISTORY_ITEMS;
  return { offset: count(query.offset, 'offset'), limit };
}

function count(raw: unknown, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new StudioError('BAD_INPUT', `${name} must be a non-negative integer`);
  return n;
}

/**
 * Sends a JSON array one item at a time, in writes of about 1 MB, waiting for the client when the
 * socket is full and letting the event loop run between slices: no single string holds the list.
 */
async function sendJsonArray<T>(res: Response, items: T[], form: (item: T) => unknown): Promise<void> {
  res.type('application/json');
  let chunk = '[';
  let sliceStart = performance.now();
  for (let i = 0; i < items.length; i++) {
    chunk += (i === 0 ? '' : ',') + JSON.stringify(form(items[i]!));
    if (chunk.length < 1 << 20) continue;
    if (res.destroyed) return;
    const full = !res.write(chunk);
    chunk = '';
    if (full) await drained(res);
    if (performance.now() - sliceStart > 4) {
      await new Promise((r) => setImmediate(r));
      sliceStart = performance.now();
    }
  }
  if (!res.destroyed) res.end(`${chunk}]`);
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function entry(ctx: ServerContext, id: string): StoredHistoryEntry {
  const found = ctx.queue.historyEntry(id);
  if (!found) throw new StudioError('NOT_FOUND', `no prompt with id ${JSON.stringify(id)} in the history`);
  return found;
}
