import { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerContext } from './context.ts';

/**
 * GET /api/history[?max_items=N] (oldest first, the last N when limited), GET /api/history/:id,
 * DELETE /api/history (all) and DELETE /api/history/:id.
 */
export function historyRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/history', (req, res) => {
    const all = ctx.queue.history();
    const raw = req.query.max_items;
    if (raw === undefined) return void res.json(all);
    const max = Number(raw);
    if (!Number.isInteger(max) || max < 0) throw new StudioError('BAD_INPUT', 'max_items must be a non-negative integer');
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
