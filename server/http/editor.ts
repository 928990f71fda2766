import express, { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';

/**
 * Serves the editor at `/`, and answers unknown `/api/...` paths with a JSON 404 instead of
 * falling through to static files, so API clients always get the API's error shape.
 */
export function editorRouter(editorDir: string): Router {
  const router = Router();
  router.use('/api', (req) => {
    throw new StudioError('NOT_FOUND', `no API endpoint ${req.method} /api${req.path}`);
  });
  router.use(
    express.static(editorDir, {
      index: 'index.html',
      dotfiles: 'ignore',
      fallthrough: true,
      setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache'),
    }),
  );
  return router;
}
