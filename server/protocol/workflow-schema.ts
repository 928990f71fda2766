import { z } from 'zod';
import { StudioError } from '../../nodes/api/errors.ts';

export const WORKFLOW_FORMAT = 'supir-studio/workflow';
export const WORKFLOW_VERSION = 1;

/** Node modes, as litegraph numbers them: 0 runs, 2 is muted (left out), 4 is bypassed. */
export const MODE_ALWAYS = 0;
export const MODE_MUTED = 2;
export const MODE_BYPASS = 4;

const id = z.number().int().min(0);
const vec2 = z.tuple([z.number(), z.number()]);
const scalar = z.union([z.string().max(1_000_000), z.number(), z.boolean(), z.null()]);

const WorkflowNodeSchema = z.object({
  id,
  type: z.string().min(1).max(200),
  title: z.string().max(500).optional(),
  pos: vec2,
  size: vec2.optional(),
  flags: z.object({ collapsed: z.boolean().optional(), pinned: z.boolean().optional() }).passthrough().optional(),
  order: z.number().int().optional(),
  mode: z.union([z.literal(MODE_ALWAYS), z.literal(MODE_MUTED), z.literal(MODE_BYPASS)]).default(MODE_ALWAYS),
  color: z.string().max(64).optional(),
  bgcolor: z.string().max(64).optional(),
  inputs: z
    .array(
      z.object({
        name: z.string().max(200),
        type: z.string().max(200),
        link: id.nullable(),
        /** Present when the slot drives a widget rather than a socket input. */
        widget: z.object({ name: z.string().max(200) }).optional(),
      }),
    )
    .default([]),
  outputs: z
    .array(z.object({ name: z.string().max(200), type: z.string().max(200), links: z.array(id).nullable().default([]) }))
    .default([]),
  properties: z.record(z.string(), z.unknown()).optional(),
  /** Widget values by widget name. */
  widgets_values: z.record(z.string().max(200), scalar).default({}),
});

const LinkSchema = z.tuple([id, id, id, id, id, z.string().max(200)]);

export const WorkflowSchema = z.object({
  format: z.literal(WORKFLOW_FORMAT),
  version: z.literal(WORKFLOW_VERSION),
  name: z.string().max(200).optional(),
  last_node_id: id.default(0),
  last_link_id: id.default(0),
  nodes: z.array(WorkflowNodeSchema).max(10_000),
  /** `[link id, from node, from slot, to node, to slot, type]`, as in ComfyUI. */
  links: z.array(LinkSchema).max(100_000).default([]),
  groups: z
    .array(z.object({ title: z.string().max(500), bounding: z.tuple([z.number(), z.number(), z.number(), z.number()]), color: z.string().max(64).optional() }))
    .default([]),
  extra: z.record(z.string(), z.unknown()).default({}),
});

export type Workflow = z.infer<typeof WorkflowSchema>;
export type WorkflowNode = Workflow['nodes'][number];

/**
 * Steps that lift an older file to the next version: `MIGRATIONS[n]` turns version n into n + 1.
 * Version 1 is the first, so the list is empty; the hook is here so old files keep loading.
 */
const MIGRATIONS: Record<number, (raw: Record<string, unknown>) => Record<string, unknown>> = {};

export function isWorkflowFile(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && (raw as { format?: unknown }).format === WORKFLOW_FORMAT;
}

/** Migrates and validates a workflow file; errors name the node (by id) and the field. */
export function parseWorkflow(raw: unknown): Workflow {
  if (!isWorkflowFile(raw)) {
    throw new StudioError('VALIDATION', `not a SUPIR Studio workflow: "format" must be "${WORKFLOW_FORMAT}"`);
  }
  let doc = raw as Record<string, unknown>;
  const version = doc.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new StudioError('VALIDATION', `workflow "version" must be a positive integer, got ${JSON.stringify(version)}`);
  }
  if (version > WORKFLOW_VERSION) {
    throw new StudioError('VALIDATION', `workflow version ${version} was made by a newer SUPIR Studio (this one reads up to ${WORKFLOW_VERSION})`);
  }
  for (let v = version; v < WORKFLOW_VERSION; v++) doc = MIGRATIONS[v]!(doc);
  const parsed = WorkflowSchema.safeParse(doc);
  if (!parsed.success) {
    throw new StudioError('VALIDATION', `invalid workflow: ${formatIssues(parsed.error.issues, doc)}`);
  }
  return parsed.data;
}

/** Zod issues as "node 7 (LoadImage) field pos: ..." so a person can find the culprit. */
export function formatIssues(issues: z.core.$ZodIssue[], doc: Record<string, unknown>): string {
  return issues
    .slice(0, 20)
    .map((issue) => {
      const [top, index, ...rest] = issue.path;
      if (top === 'nodes' && typeof index === 'number') {
        const node = (doc.nodes as Array<{ id?: unknown; type?: unknown }> | undefined)?.[index];
        const label = node ? `node ${String(node.id)} (${String(node.type)})` : `nodes[${index}]`;
        return `${label} field ${rest.join('.') || '(itself)'}: ${issue.message}`;
      }
      return `${issue.path.join('.') || '(document)'}: ${issue.message}`;
    })
    .join('; ');
}
