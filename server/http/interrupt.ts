import { Router } from 'express';
import { z } from 'zod';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerContext } from './context.ts';

const InterruptSchema = z.object({ prompt_id: z.string().min(1).max(100).optional() });

/**
 * POST /api/interrupt stops the running prompt. With `{prompt_id}` it stops only that one, so a
 * client that saw its prompt finish cannot interrupt the next one by accident.
 */
export function interruptRouter(ctx: ServerContext): Router {
  const router = Router();
  router.post('/api/interrupt', (req, res) => {
    const body = InterruptSchema.safeParse(req.body ?? {});
    if (!body.success) throw new StudioError('BAD_INPUT', 'body must be {} or {"prompt_id": "..."}');
    res.json({ interrupted: ctx.queue.interrupt(body.data.prompt_id) });
  });
  return router;
}
