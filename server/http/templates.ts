import fs from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import { comboOptions } from '../../nodes/api/widgets.ts';
import { parseWorkflow, type Workflow } from '../engine/index.ts';
import { DEFAULT_TEMPLATE, TEMPLATES_DIR } from '../config.ts';
import type { ServerContext } from './context.ts';

/**
 * GET /api/templates: the shipped workflows, `[{name, title, default}]`; the editor opens the
 * default one on first start. GET /api/templates/:name: one of them. Read-only, and only names
 * from the listing are served, so no request names a path.
 */
export function templatesRouter(ctx: ServerContext): Router {
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
    res.json(withLocalChoices(parseWorkflow(JSON.parse(fs.readFileSync(path.join(TEMPLATES_DIR, `${entry.name}.json`), 'utf8'))), ctx));
  });
  return router;
}

/**
 * A template names the models it was written for (the SUPIR-v0Q pack, an ESRGAN model): where this
 * machine lists other choices for such a widget (files and packs, read when asked) and not that
 * one, the template opens with the first that exists, so it shows what is here. With nothing
 * there, the value stays and the node says how to make it.
 */
function withLocalChoices(workflow: Workflow, ctx: ServerContext): Workflow {
  for (const node of workflow.nodes) {
    const def = ctx.registry.get(node.type);
    for (const [name, spec] of Object.entries(def?.widgets ?? {})) {
      if (spec.kind !== 'COMBO' || typeof spec.options !== 'function') continue;
      const value = node.widgets_values[name];
      const options = comboOptions(spec, ctx.env);
      if (typeof value === 'string' && options.length > 0 && !options.includes(value)) node.widgets_values[name] = options[0]!;
    }
  }
  return workflow;
}

function titleOf(file: string, fallback: string): string {
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown };
    return typeof doc.name === 'string' ? doc.name : fallback;
  } catch {
    return fallback;
  }
}
