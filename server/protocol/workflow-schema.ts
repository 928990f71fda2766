import { z } from 'zod';
import { StudioError } from '../../nodes/api/errors.ts';

export const WORKFLOW_FORMAT = 'supir-studio/workflow';
/** 2: the MODEL socket type split into SUPIR_MODEL and UPSCALE_MODEL (version 1 files are migrated). */
export const WORKFLOW_VERSION = 2;

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
 * Version 1 had one MODEL socket type for every model. Version 2 has SUPIR_MODEL (Load SUPIR
 * Model's output, the SUPIR nodes' input) and UPSCALE_MODEL (Load Upscale Model's output, Upscale
 * Image's input), so that a wrong link is refused at validation. These tables are the node types
 * of version 1 that made or took a MODEL; they are history, not the catalogue of the day.
 */
const V1_MODEL_OUTPUTS: ReadonlyMap<string, string> = new Map([
  ['LoadSupirModel', 'SUPIR_MODEL'],
  ['LoadUpscaleModel', 'UPSCALE_MODEL'],
]);
const V1_MODEL_INPUTS: ReadonlyMap<string, string> = new Map([
  ['SupirStage1', 'SUPIR_MODEL'],
  ['SupirEncode', 'SUPIR_MODEL'],
  ['TextEncodeSDXL', 'SUPIR_MODEL'],
  ['SupirSample', 'SUPIR_MODEL'],
  ['SupirDecode', 'SUPIR_MODEL'],
  ['UpscaleImage', 'UPSCALE_MODEL'],
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * 1 → 2: a MODEL link takes the type of the node that produces it, a MODEL output slot its node's
 * output type and a MODEL input slot its node's input type. A link from a node that never made a
 * model keeps "MODEL", so validation names it. The document is not validated yet: anything
 * malformed is left for the schema to report.
 */
export function migrateModelSockets(doc: Record<string, unknown>): Record<string, unknown> {
  const nodes = Array.isArray(doc.nodes) ? doc.nodes : [];
  const typeOf = new Map<unknown, string>();
  for (const n of nodes) if (isRecord(n) && typeof n.type === 'string') typeOf.set(n.id, n.type);
  const links = Array.isArray(doc.links)
    ? doc.links.map((l: unknown) => {
        if (!Array.isArray(l) || l[5] !== 'MODEL') return l;
        const type = V1_MODEL_OUTPUTS.get(typeOf.get(l[1]) ?? '');
        return type ? [...l.slice(0, 5), type, ...l.slice(6)] : l;
      })
    : doc.links;
  const retype = (slots: unknown, type: string | undefined): unknown =>
    Array.isArray(slots) && type ? slots.map((slot: unknown) => (isRecord(slot) && slot.type === 'MODEL' && !slot.widget ? { ...slot, type } : slot)) : slots;
  return {
    ...doc,
    nodes: Array.isArray(doc.nodes)
      ? doc.nodes.map((n: unknown) => {
          if (!isRecord(n) || typeof n.type !== 'string') return n;
          const out = { ...n };
          if ('inputs' in n) out.inputs = retype(n.inputs, V1_MODEL_INPUTS.get(n.type));
          if ('outputs' in n) out.outputs = retype(n.outputs, V1_MODEL_OUTPUTS.get(n.type));
          return out;
        })
      : doc.nodes,
    ...(doc.links === undefined ? {} : { links }),
  };
}

/**
 * Steps that lift an older file to the next version: `MIGRATIONS[n]` turns version n into n + 1
 * (parseWorkflow sets the new version number).
 */
const MIGRATIONS: Record<number, (raw: Record<string, unknown>) => Record<string, unknown>> = {
  1: migrateModelSockets,
};

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
  for (let v = version; v < WORKFLOW_VERSION; v++) doc = { ...MIGRATIONS[v]!(doc), version: v + 1 };
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
