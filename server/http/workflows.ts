import fs from 'node:fs';
import { Router } from 'express';
import { listFiles, resolveInside, writeFileAtomic } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import { parseWorkflow } from '../engine/index.ts';
import type { ServerContext } from './context.ts';

/**
 * Names are single file names, not paths: no slash, no "..", nothing that a file system might
 * treat specially at the end (Windows drops trailing dots and spaces).
 */
const NAME_RE = /^[\w][\w .()-]{0,127}$/;

export function checkWorkflowName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..') || /[. ]$/.test(name)) {
    throw new StudioError(
      'BAD_PATH',
      'workflow names are 1-128 letters, digits, spaces and _ . ( ) -, start with a letter, digit or _, and hold no ".."',
    );
  }
  return name;
}

/** GET /api/workflows, GET|PUT|DELETE /api/workflows/:name — saved workflows as <name>.json. */
export function workflowsRouter(ctx: ServerContext): Router {
  const router = Router();
  const fileOf = (name: string): string => resolveInside(ctx.dirs, 'workflows', `${checkWorkflowName(name)}.json`);

  router.get('/api/workflows', (_req, res) => {
    const names = listFiles(ctx.dirs, 'workflows', ['.json'])
      .filter((f) => !f.includes('/'))
      .map((f) => f.slice(0, -'.json'.length))
      .filter((n) => NAME_RE.test(n));
    res.json(names);
  });

  router.get('/api/workflows/:name', async (req, res) => {
    const file = fileOf(req.params.name);
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch {
      throw new StudioError('NOT_FOUND', `no workflow named ${JSON.stringify(req.params.name)}`);
    }
    res.type('application/json').send(text);
  });

  router.put('/api/workflows/:name', async (req, res) => {
    const file = fileOf(req.params.name);
    // Validation throws VALIDATION (400) with the node and field at fault; the file is untouched.
    parseWorkflow(req.body);
    await writeFileAtomic(file, Buffer.from(JSON.stringify(req.body, null, 2)));
    res.json({ name: req.params.name });
  });

  router.delete('/api/workflows/:name', async (req, res) => {
    const file = fileOf(req.params.name);
    try {
      await fs.promises.unlink(file);
    } catch {
      throw new StudioError('NOT_FOUND', `no workflow named ${JSON.stringify(req.params.name)}`);
    }
    res.json({ deleted: req.params.name });
  });
  return router;
}
