import fs from 'node:fs';
import { MAX_BATCH_ITEMS, type BatchItem } from '../../nodes/api/batch.ts';
import { resolveInside } from '../../nodes/api/data-dirs.ts';
import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { CompiledGraph, CompiledNode } from './graph.ts';
import { nodeSources, planOrder } from './plan.ts';
import { expandSweep } from './sweep.ts';

/** The literal each batch copy of the listing node gets: its image's file (inputs-relative). */
export const BATCH_FILE_LITERAL = 'file';

/**
 * Expands a batch: the listing node (Load Images (folder)) names its images, and the graph is
 * copied once per image with the sweep's branch mechanism (server/engine/sweep.ts): the listing
 * node and everything downstream of it get one copy per image (`<id>:<k>`), upstream nodes stay
 * single and run once, each copy is cached by its own content. Every copy carries its image
 * (`batch`), which its node reads as `NodeContext.batch`; branch captions are the file names.
 */
export function expandBatch(
  nodes: Map<string, CompiledNode>,
  outputs: string[],
  source: CompiledNode,
  env: NodeEnv,
): CompiledGraph | { input: string; reason: string } {
  const listing = source.def.batch!.list(source.literals as never, env);
  if ('reason' in listing) return listing;
  if (listing.entries.length > MAX_BATCH_ITEMS) {
    return { input: 'limit', reason: `${listing.entries.length} images match; one batch runs at most ${MAX_BATCH_ITEMS}: set limit, and start for the next part` };
  }
  const items: BatchItem[] = listing.entries.map((e, index) => ({ ...e, node: source.id, index }));
  const axis = { target: source.id, widget: BATCH_FILE_LITERAL, values: items.map((i) => i.file) };
  const expanded = expandSweep(nodes, outputs, [axis]);
  for (const [id, node] of expanded.nodes) {
    if (!node.branch) continue;
    const item = items[node.branch.index]!;
    expanded.nodes.set(id, {
      ...node,
      title: `${nodes.get(node.branch.of)!.title} [${item.source}]`,
      branch: { ...node.branch, label: item.source },
      batch: item,
    });
  }
  return {
    nodes: expanded.nodes,
    outputs: expanded.outputs,
    order: planOrder(expanded.nodes, expanded.outputs),
    batch: { node: source.id, title: source.title, items },
  };
}

/** A batch with its finished images left out: what to run, and the files of what is not run again. */
export interface ResumedBatch {
  graph: CompiledGraph;
  /** Output copies left out because their files exist, with those files. */
  resumed: Map<string, FileRef[]>;
  /** Items whose every output was left out. */
  items: Set<number>;
  /**
   * Outputs that name their files but whose files are missing (deleted since): they run even when
   * the cache holds their result, which would not bring the files back.
   */
  rerun: Set<string>;
}

/**
 * Leaves out the images of a batch that are done: an image is done when every output node of its
 * branch that keeps files names, before running, the files it would write (`resumeFiles`: Save
 * Image with `{name}` or `{index}` in its prefix) and all of them exist. Outputs that keep nothing
 * (no `resumeFiles`: Preview Image) do not count, and are left out with their image; a Save Image
 * whose names come from a counter cannot tell, so its image runs. Outputs are written atomically
 * (temporary file, then rename), and an image file last of all its files, so a file that exists
 * is complete. Nodes only those outputs needed are dropped; the rest runs as planned.
 */
export function resumeBatch(graph: CompiledGraph, env: NodeEnv): ResumedBatch {
  const resumed = new Map<string, FileRef[]>();
  const items = new Set<number>();
  const rerun = new Set<string>();
  if (!graph.batch) return { graph, resumed, items, rerun };
  const byItem = new Map<number, string[]>();
  for (const id of graph.outputs) {
    const item = graph.nodes.get(id)!.batch;
    if (item) byItem.set(item.index, [...(byItem.get(item.index) ?? []), id]);
  }
  for (const [index, ids] of byItem) {
    const found = new Map<string, FileRef[]>();
    let complete = true;
    for (const id of ids) {
      const node = graph.nodes.get(id)!;
      if (!node.def.resumeFiles) {
        found.set(id, []);
        continue;
      }
      const files = node.def.resumeFiles(node.literals as never, node.batch!, env);
      if (files && files.length > 0 && files.every((f) => exists(env, f))) found.set(id, files);
      else {
        complete = false;
        if (files) rerun.add(id);
      }
    }
    // Only outputs that keep files make an image done; an image with none (previews only) runs.
    if (!complete || ![...found.values()].some((f) => f.length > 0)) continue;
    items.add(index);
    for (const [id, files] of found) resumed.set(id, files);
  }
  if (resumed.size === 0) return { graph, resumed, items, rerun };
  const outputs = graph.outputs.filter((id) => !resumed.has(id));
  const keep = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (keep.has(id)) continue;
    keep.add(id);
    stack.push(...nodeSources(graph.nodes.get(id)!).map(([src]) => src));
  }
  const nodes = new Map([...graph.nodes].filter(([id]) => keep.has(id)));
  const order = planOrder(nodes, outputs);
  // The outputs left out stay known (not planned) so that their events can name their branch.
  for (const id of resumed.keys()) nodes.set(id, graph.nodes.get(id)!);
  return { graph: { ...graph, nodes, outputs, order }, resumed, items, rerun };
}

function exists(env: NodeEnv, ref: FileRef): boolean {
  try {
    return fs.statSync(resolveInside(env.dirs, ref.folder, ref.filename), { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}

/**
 * One share of a batch for one job of the scale-out queue (server/scale): the outputs of the
 * images `indices` (their branches), and with `shared` the outputs that belong to no image, with
 * every node they need. Nodes upstream of the batch stay in (each job runs or finds them in its
 * worker's cache; their results do not depend on the job). The batch plan stays whole, so that
 * item numbers, captions and `{index}` are those of the whole batch.
 */
export function selectBatchItems(graph: CompiledGraph, indices: ReadonlySet<number>, shared: boolean): CompiledGraph {
  if (!graph.batch) return graph;
  const outputs = graph.outputs.filter((id) => {
    const item = graph.nodes.get(id)!.batch;
    return item ? indices.has(item.index) : shared;
  });
  const keep = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (keep.has(id)) continue;
    keep.add(id);
    stack.push(...nodeSources(graph.nodes.get(id)!).map(([src]) => src));
  }
  const nodes = new Map([...graph.nodes].filter(([id]) => keep.has(id)));
  return { ...graph, nodes, outputs, order: planOrder(nodes, outputs) };
}

/** Whether any output of the graph belongs to no image of its batch (runs once, not per image). */
export function hasSharedOutputs(graph: CompiledGraph): boolean {
  return graph.outputs.some((id) => !graph.nodes.get(id)!.batch);
}
