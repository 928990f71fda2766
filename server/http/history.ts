import { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerContext } from './context.ts';

/**
 * How many entries `GET /api/history` returns when the client does not say: the newest 200. The
 * history keeps up to `historyLimit` entries (10 000 by default), each with its prompt and
 * workflow, and a client that polls the list must not be sent all of them every time.
 */
export const DEFAULT_HISTORY_ITEMS = 200;

/**
 * GET /api/history[?max_items=N] (oldest first: the newest 200 by default, the newest N when
 * given: the history never holds more than its `historyLimit`, so a larger N returns them all), GET /api/history/:id, DELETE /api/history (all) and
 * DELETE /api/history/:id. The list's `X-Total-Count` header says how many entries there are.
 */
export function historyRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/history', (req, res) => {
    const all = ctx.queue.history();
    const raw = req.query.max_items;
    let max = DEFAULT_HISTORY_ITEMS;
    if (raw !== undefined) {
      max = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(max)) throw new StudioError('BAD_INPUT', 'max_items must be a non-negative integer');
    }
    res.setHeader('X-Total-Count', String(all.length));
    res.json(max === 0 ? [] : all.slice(-max));
  });
  router.get('/api/history/:id', (req, res) => {
    res.json(entry(ctx, req.params.id));
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

function entry(ctx: ServerContext, id: string): NonNullable<ReturnType<ServerContext['queue']['historyEntry']>> {
  const found = ctx.queue.historyEntry(id);
  if (!found) throw new StudioError('NOT_FOUND', `no prompt with id ${JSON.stringify(id)} in the history`);
  return found;
}
