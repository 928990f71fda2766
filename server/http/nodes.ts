import { Router } from 'express';
import type { ServerContext } from './context.ts';

/** GET /api/nodes: the node catalogue the editor builds its node classes from. */
export function nodesRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/nodes', (_req, res) => {
    // Combo options list files in the data folders, so the answer changes with every upload.
    res.set('Cache-Control', 'no-store');
    res.json(ctx.registry.describe(ctx.env));
  });
  return router;
}
