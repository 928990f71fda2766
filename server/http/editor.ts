import fs from 'node:fs';
import path from 'node:path';
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
  router.get('/', (_req, res, next) => {
    if (fs.existsSync(path.join(editorDir, 'index.html'))) return next();
    // Source files are never served in place of a build: say what to do instead.
    res.status(503).type('html').send(NOT_BUILT);
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

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>SUPIR Studio</title>
<body style="background:#16171b;color:#e4e6eb;font:15px system-ui;padding:40px">
<h1>SUPIR Studio</h1><p>The server is running, but the editor is not built. Run <code>npm run build</code>
(or start with <code>npm start</code>, which builds it) and reload.</p></body>`;
