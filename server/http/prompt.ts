import { Router, type Response } from 'express';
import { z } from 'zod';
import { StudioError } from '../../nodes/api/errors.ts';
import { ApiPromptSchema, parseWorkflow, workflowToPrompt, type ApiPrompt, type ValidationIssue } from '../engine/index.ts';
import { unavailableMessage } from '../engine/queue.ts';
import type { ServerContext } from './context.ts';
import { sendError } from './errors.ts';

/** The body of POST /api/prompt. Either part may be given; `prompt` wins when both are. */
const PromptRequestSchema = z.object({
  workflow: z.unknown().optional(),
  prompt: z.unknown().optional(),
  front: z.boolean().optional(),
  client_id: z.string().max(200).optional(),
});

/**
 * POST /api/prompt: validates and queues a graph. Every problem comes back at once in
 * `node_errors`, each naming its node, so the editor can mark all of them.
 */
export function promptRouter(ctx: ServerContext): Router {
  const router = Router();
  router.post('/api/prompt', async (req, res) => {
    const body = PromptRequestSchema.safeParse(req.body ?? {});
    if (!body.success) return invalid(res, `bad request body: ${zodSummary(body.error.issues)}`, []);
    const { workflow, prompt: rawPrompt, front, client_id } = body.data;
    if (workflow === undefined && rawPrompt === undefined) {
      return invalid(res, 'the request needs a "workflow" or a "prompt"', []);
    }
    let prompt: ApiPrompt;
    try {
      // The workflow is embedded in saved images, so it must be a real workflow even beside a prompt.
      const parsed = workflow === undefined ? undefined : parseWorkflow(workflow);
      if (rawPrompt !== undefined) {
        const checked = ApiPromptSchema.safeParse(rawPrompt);
        if (!checked.success) return invalid(res, `invalid prompt: ${zodSummary(checked.error.issues)}`, promptIssues(checked.error.issues));
        prompt = checked.data as ApiPrompt;
      } else {
        prompt = workflowToPrompt(parsed!, ctx.registry);
      }
    } catch (err) {
      if (err instanceof StudioError && err.code === 'VALIDATION') return invalid(res, err.message, []);
      throw err;
    }
    // A 200 promises that the prompt survives a crash: without a journal that can store it, refuse.
    const problem = await ctx.queue.storageProblem();
    if (problem) return unavailable(res, problem);
    const result = ctx.queue.submit({
      prompt,
      ...(workflow === undefined ? {} : { workflow }),
      ...(front === undefined ? {} : { front }),
      ...(client_id === undefined ? {} : { clientId: client_id }),
    });
    if (result.ok) {
      // Answered once the prompt is in the journal: a 200 means it survives a crash from now on.
      try {
        await ctx.queue.persisted(result.id);
      } catch (err) {
        // The prompt was withdrawn from the queue before this answer: it will not run.
        return unavailable(res, unavailableMessage(err instanceof Error ? err.message : String(err)));
      }
      res.json({ prompt_id: result.id, number: result.number });
    } else if (result.reason === 'full') {
      sendError(res, 429, 'QUEUE_FULL', result.message);
    } else if (result.reason === 'unavailable') {
      unavailable(res, result.message);
    } else {
      const n = result.errors.length;
      invalid(res, `the graph cannot run: ${n} problem${n === 1 ? '' : 's'} (first: ${result.errors[0]?.message ?? '?'})`, result.errors);
    }
  });
  return router;
}

/** 503: the journal cannot store prompts now; the same error shape as every other answer. */
function unavailable(res: Response, message: string): void {
  res.setHeader('Retry-After', '5');
  res.status(503).json({ error: { code: 'UNAVAILABLE', message } });
}

function invalid(res: Response, message: string, nodeErrors: ValidationIssue[]): void {
  sendError(res, 400, 'VALIDATION', message, { node_errors: nodeErrors });
}

function zodSummary(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 10)
    .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
    .join('; ');
}

/** Schema problems of an API prompt, pointed at the node whose id is the first path element. */
function promptIssues(issues: z.core.$ZodIssue[]): ValidationIssue[] {
  return issues.slice(0, 100).map((i) => {
    const [nodeId, ...rest] = i.path;
    return {
      node_id: typeof nodeId === 'string' ? nodeId : null,
      code: 'bad_value',
      message: `${rest.map(String).join('.') || '(node)'}: ${i.message}`,
    };
  });
}
