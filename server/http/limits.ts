import type { RequestHandler } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerLimits } from '../config.ts';

/** Deeper than any document of ours; deep enough nesting would overflow the stack of JSON.stringify. */
export const MAX_JSON_DEPTH = 64;

/**
 * Checks a parsed JSON body against the limits that the byte limit alone does not give: every
 * string's length, the nesting depth, and the number of nodes of a prompt or workflow. Iterative,
 * so a hostile body cannot overflow the stack here either. Throws TOO_LARGE (413) naming where.
 */
export function checkJsonLimits(body: unknown, limits: Pick<ServerLimits, 'maxNodes' | 'maxStringLength'>): void {
  // Paths are only spelled out for the error, so walking a large valid body stays cheap.
  type Item = { value: unknown; parent: Item | null; key: string | number; depth: number };
  const where = (item: Item): string => {
    let out = '';
    for (let at: Item | null = item; at && at.parent; at = at.parent) out = (typeof at.key === 'number' ? `[${at.key}]` : `.${at.key}`) + out;
    return out.replace(/^\./, '') || '(body)';
  };
  const stack: Item[] = [{ value: body, parent: null, key: '', depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const { value, depth } = item;
    if (typeof value === 'string') {
      if (value.length > limits.maxStringLength) {
        throw new StudioError('TOO_LARGE', `${where(item)} is a text of ${value.length} characters; this server accepts at most ${limits.maxStringLength}`);
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) throw new StudioError('TOO_LARGE', `${where(item)} is nested more than ${MAX_JSON_DEPTH} levels deep`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], parent: item, key: i, depth: depth + 1 });
    } else {
      for (const [key, child] of Object.entries(value)) {
        if (key.length > limits.maxStringLength) throw new StudioError('TOO_LARGE', `a key in ${where(item)} is longer than ${limits.maxStringLength} characters`);
        stack.push({ value: child, parent: item, key, depth: depth + 1 });
      }
    }
  }
  const nodes = countNodes(body);
  if (nodes > limits.maxNodes) {
    throw new StudioError('TOO_LARGE', `the graph has ${nodes} nodes; this server runs at most ${limits.maxNodes} in one prompt or workflow`);
  }
}

/** Nodes of a POST /api/prompt body ({workflow, prompt}) or of a workflow document (PUT). */
function countNodes(body: unknown): number {
  if (!isObject(body)) return 0;
  const workflowNodes = (doc: unknown): number => (isObject(doc) && Array.isArray(doc.nodes) ? doc.nodes.length : 0);
  const promptNodes = isObject(body.prompt) ? Object.keys(body.prompt).length : 0;
  return Math.max(workflowNodes(body), workflowNodes(body.workflow), promptNodes);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Applies checkJsonLimits to the JSON bodies of writes under /api (after the JSON parser). */
export function jsonLimits(limits: Pick<ServerLimits, 'maxNodes' | 'maxStringLength'>): RequestHandler {
  return (req, _res, next) => {
    if (req.method === 'POST' || req.method === 'PUT') {
      try {
        checkJsonLimits(req.body, limits);
      } catch (err) {
        return next(err);
      }
    }
    next();
  };
}
