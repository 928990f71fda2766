import { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerContext } from './context.ts';

/** GET /api/queue lists; DELETE /api/queue/:id cancels one pending prompt; DELETE /api/queue clears. */
export function queueRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/queue', (_req, res) => {
    res.json(ctx.queue.list());
  });
  router.delete('/api/queue/:id', (req, res) => {
    // Only pending prompts can be cancelled; the running one is stopped with /api/interrupt.
    if (!ctx.queue.cancel(req.params.id)) {
      throw new StudioError('NOT_FOUND', `no pending prompt with id ${JSON.stringify(req.params.id)}`);
    }
    res.json({ cancelled: req.params.id });
  });
  router.delete('/api/queue', (_req, res) => {
    res.json({ cleared: ctx.queue.clearPending() });
  });
  return router;
}
