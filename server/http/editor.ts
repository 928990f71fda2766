import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import express, { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';

/**
 * The editor's Content-Security-Policy: scripts only from this server's own files (no inline
 * script, no eval), styles from its files and inline (Svelte writes style attributes), images
 * also from data: and blob: (previews arrive as blobs), connections only to this origin (the API
 * and the websocket), nothing plugged in, no framing, no <base>, forms only to this origin.
 */
export const EDITOR_CSP_DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
];

/**
 * The policy for one request. CSP 3 lets 'self' cover ws:/wss: of the same host, and older
 * browsers need the websocket's address spelled out: taken from the Host header, only when it is
 * a plain host[:port] (the origin guard has already vetted it where it can be vetted).
 */
export function editorCsp(req: Pick<IncomingMessage, 'headers'>): string {
  const host = req.headers.host ?? '';
  const plain = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(host);
  return EDITOR_CSP_DIRECTIVES.map((d) => (d === "connect-src 'self'" && plain ? `${d} ws://${host} wss://${host}` : d)).join('; ');
}

/**
 * Serves the editor at `/`, and answers unknown `/api/...` paths with a JSON 404 instead of
 * falling through to static files, so API clients always get the API's error shape.
 */
export function editorRouter(editorDir: string): Router {
  const router = Router();
  router.use('/api', (req) => {
    throw new StudioError('NOT_FOUND', `no API endpoint ${req.method} /api${req.path}`);
  });
  // Every answer of this router is the editor or part of it: the page, its assets and the
  // "not built" page (express's own 404 for a missing file sets the stricter default-src 'none').
  router.use((req, res, next) => {
    res.setHeader('Content-Security-Policy', editorCsp(req));
    next();
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
