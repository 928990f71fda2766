import fs from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import { parseWorkflow } from '../engine/index.ts';
import { DEFAULT_TEMPLATE, TEMPLATES_DIR } from '../config.ts';
import type { ServerContext } from './context.ts';

/**
 * GET /api/templates: the shipped workflows, `[{name, title, default}]`; the editor opens the
 * default one on first start. GET /api/templates/:name: one of them. Read-only, and only names
 * from the listing are served, so no request names a path.
 */
export function templatesRouter(_ctx: ServerContext): Router {
  const router = Router();
  const list = (): Array<{ name: string; title: string; default: boolean }> =>
    fs
      .readdirSync(TEMPLATES_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => {
        const name = f.slice(0, -'.json'.length);
        return { name, title: titleOf(path.join(TEMPLATES_DIR, f), name), default: name === DEFAULT_TEMPLATE };
      });

  router.get('/api/templates', (_req, res) => {
    res.json(list());
  });
  router.get('/api/templates/:name', (req, res) => {
    const entry = list().find((t) => t.name === req.params.name);
    if (!entry) throw new StudioError('NOT_FOUND', `no template named ${JSON.stringify(req.params.name)}`);
    res.json(parseWorkflow(JSON.parse(fs.readFileSync(path.join(TEMPLATES_DIR, `${entry.name}.json`), 'utf8'))));
  });
  return router;
}

function titleOf(file: string, fallback: string): string {
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown };
    return typeof doc.name === 'string' ? doc.name : fallback;
  } catch {
    return fallback;
  }
}
