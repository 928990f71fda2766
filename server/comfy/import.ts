/**
 * ComfyUI workflow → SUPIR Studio workflow, with a report. Three passes over the ComfyUI graph:
 * pass-throughs and primitives, then every node with a mapper, then the nodes that mappers take
 * in (checkpoints, prompts, empty latents, sampler pieces) or, when none did, placeholders.
 */
import { parseWorkflow, type Workflow } from '../protocol/workflow-schema.ts';
import { ImportContext, layout, toWorkflow, type ImportOptions } from './build.ts';
import { readComfyGraph, type ComfyGraph } from './graph.ts';
import { CORE_MAPPERS, PASS_THROUGHS, type Mapper } from './map-core.ts';
import { KIJAI_MAPPERS } from './map-kijai.ts';
import { DEFERRED, NATIVE_MAPPERS } from './map-native.ts';
import { placeholderOf } from './placeholder.ts';
import { ReportBuilder, type ComfyReport } from './report.ts';
import { OLDER_WIDGETS, WIDGETS } from './widgets.ts';

export type { ImportOptions } from './build.ts';

export interface ComfyImport {
  workflow: Workflow;
  report: ComfyReport;
  /** Our node id → the ComfyUI node id it came from. */
  comfyIds: Record<string, string>;
}

const MAPPERS: Record<string, Mapper> = { ...CORE_MAPPERS, ...KIJAI_MAPPERS, ...NATIVE_MAPPERS };

/** Every ComfyUI node type the importer maps (the rest become placeholders). */
export const MAPPED_TYPES: readonly string[] = [...Object.keys(PASS_THROUGHS), ...Object.keys(MAPPERS), ...DEFERRED].sort();

const SOURCE_NAMES: Record<ComfyGraph['source'], string> = {
  'ui-0.4': 'ComfyUI workflow (schema 0.4)',
  'ui-1.0': 'ComfyUI workflow (schema 1.0)',
  api: 'ComfyUI API prompt',
};

const DEFERRED_WHY: Record<string, string> = {
  CheckpointLoaderSimple: 'an SD/SDXL checkpoint that feeds no SUPIR loader: SUPIR Studio runs SDXL only inside a SUPIR model pack',
  CheckpointLoader: 'a checkpoint that feeds no SUPIR loader',
  VAELoader: 'a VAE that feeds no SUPIR pipeline (the pack holds the VAE)',
  CLIPLoader: 'a text encoder that feeds no SUPIR pipeline (the pack holds them)',
  DualCLIPLoader: 'text encoders that feed no SUPIR pipeline (the pack holds them)',
  CLIPTextEncode: 'a prompt that no SUPIR sampler uses',
  EmptyLatentImage: 'a latent that no SUPIR sampler uses',
  KSamplerSelect: 'a sampler choice that no SUPIR sampler uses',
  BasicScheduler: 'a schedule that no SUPIR sampler uses',
};

/**
 * Reads a ComfyUI UI workflow or API prompt (`prompt`: a PNG's prompt chunk, which names the
 * values of the workflow's nodes) into a SUPIR Studio workflow that validates.
 */
export function importComfy(raw: unknown, options: ImportOptions & { prompt?: unknown; name?: string }): ComfyImport {
  const graph = readComfyGraph(raw, options.prompt);
  const report = new ReportBuilder(SOURCE_NAMES[graph.source] + (graph.subgraphs ? `, ${graph.subgraphs} subgraph${graph.subgraphs === 1 ? '' : 's'} expanded` : ''));
  const ctx = new ImportContext(graph, report, options);
  const nodes = [...graph.nodes.values()];
  for (const n of nodes) PASS_THROUGHS[n.type]?.(n, ctx);
  // Bypassed ComfyUI nodes pass their first input of the output's type through, as ComfyUI does.
  for (const n of nodes) {
    if (n.mode !== 4 || PASS_THROUGHS[n.type]) continue;
    n.outputs.forEach((out, slot) => {
      const input = n.inputs.find((i) => i.type === out.type && n.links.has(i.name));
      if (input) ctx.target(n.id, slot, { alias: n.links.get(input.name)! });
    });
  }
  for (const n of nodes) {
    const mapper = MAPPERS[n.type];
    if (!mapper || DEFERRED.has(n.type)) continue;
    mapper(n, ctx);
    const read = ctx.widgets(n);
    if (read.layout) report.translated(ctx.label(n), `its values are in the widget order of ${read.layout}: read in that order`);
    if (read.misaligned) report.unsupported(ctx.label(n), `widget values do not line up with the node's widgets (${read.misaligned}); check the values after opening`);
    // Values for inputs this importer does not know (a newer version of the node) are said, not used.
    const known = WIDGETS[n.type];
    if (known) {
      const names = new Set([...known, ...(OLDER_WIDGETS[n.type] ?? []).flatMap((o) => o.widgets)].map((w) => w.name));
      for (const name of Object.keys(read.values)) {
        if (!names.has(name)) report.unsupported(ctx.label(n), `${name} = ${JSON.stringify(read.values[name]).slice(0, 60)} is not an input this importer knows for ${n.type}; not used`);
      }
    }
  }
  for (const n of nodes) {
    if (PASS_THROUGHS[n.type] || ctx.nodes.has(n.id) || ctx.absorbed.has(n.id)) continue;
    if (MAPPERS[n.type] && !DEFERRED.has(n.type)) continue;
    placeholderOf(n, ctx, DEFERRED_WHY[n.type] ?? `no equivalent for ComfyUI node "${n.type}" here`);
  }
  layout(ctx);
  const { workflow } = toWorkflow(ctx, options.name);
  // What we made must be a valid file: a mapping bug is ours, said as such.
  const checked = parseWorkflow(workflow);
  const comfyIds = (checked.extra.comfy as { ids: Record<string, string> }).ids;
  return { workflow: checked, report: report.build(), comfyIds };
}
