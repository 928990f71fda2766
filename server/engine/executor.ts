import type { FileRef, NodeContext } from '../../nodes/api/define.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import { InputError, InterruptedError, StudioError } from '../../nodes/api/errors.ts';
import { Rng, seedFromString } from '../../nodes/api/rng.ts';
import { bytesOf, shapeOf, type ImageTensor } from '../../nodes/api/tensor.ts';
import { checkWidgetValue, describe } from '../../nodes/api/widgets.ts';
import type { OutputCache } from './cache.ts';
import type { BranchInfo, EventSink, NodeErrorInfo, PromptStatus } from './events.ts';
import { EtaEstimator } from './eta.ts';
import { computeKeys, FingerprintError } from './keys.ts';
import { nodeSources, type CompiledGraph, type CompiledNode } from './validate.ts';
import { branchLabel, type Branch } from '../../nodes/api/branch.ts';
import { resumeBatch } from './batch.ts';
import { BatchProgress, type BatchSummary } from './batch-progress.ts';

export type PreviewEncoder = (image: ImageTensor) => Promise<{ format: 'jpeg' | 'png'; bytes: Uint8Array; width: number; height: number }>;

export interface ExecuteOptions {
  promptId: string;
  /** The prompt's place in the queue's numbering, shown by clients (null outside a queue). */
  promptNumber?: number;
  graph: CompiledGraph;
  env: NodeEnv;
  cache: OutputCache;
  sink: EventSink;
  signal: AbortSignal;
  extra?: { workflow?: unknown; prompt?: unknown };
  encodePreview?: PreviewEncoder;
  /** Shortest interval between progress events of one node (the last one always goes). */
  progressIntervalMs?: number;
}

export interface PromptResult {
  status: Exclude<PromptStatus, 'cancelled'>;
  executed: string[];
  cached: string[];
  timings_ms: Record<string, number>;
  outputs: Record<string, FileRef[]>;
  error?: NodeErrorInfo;
  /** The sweep branch of every copied node the run reached (executed, cached or failed); absent without a sweep. */
  branches?: Record<string, BranchInfo>;
  /** A batch's images and how each ended; absent without a Load Images (folder) node. */
  batch?: BatchSummary;
}

/**
 * Runs a compiled graph once: reuses cached outputs, executes the rest in plan order, and frees
 * each intermediate result after its last consumer has run (the cache may still hold it).
 */
export async function executeGraph(opts: ExecuteOptions): Promise<PromptResult> {
  const { sink, promptId, signal, cache } = opts;
  const started = performance.now();
  // A batch run again leaves out the images whose outputs exist (server/engine/batch.ts).
  const resumed = resumeBatch(opts.graph, opts.env);
  const graph = resumed.graph;
  const resumedIds = [...resumed.resumed.keys()];
  sink.emit({ type: 'prompt_start', prompt_id: promptId, number: opts.promptNumber ?? null, nodes: [...graph.order, ...resumedIds] });
  const result: PromptResult = { status: 'success', executed: [], cached: [], timings_ms: {}, outputs: {} };
  const batch = graph.batch ? new BatchProgress(graph, resumed, (e) => sink.emit(e), promptId) : undefined;
  batch?.begin();
  /** `{ branch }` for a sweep branch's copy of a node, to spread into its events; `{}` otherwise. */
  const branchOf = (id: string): { branch?: BranchInfo } => {
    const branch = graph.nodes.get(id)?.branch;
    return branch ? { branch } : {};
  };
  const finish = (status: PromptResult['status']): PromptResult => {
    if (batch) {
      result.batch = batch.summary();
      // Images that failed were reported as they failed; the run fails with the first of them.
      if (status === 'success' && batch.firstError) {
        status = 'error';
        result.error = batch.firstError;
      }
    }
    result.status = status;
    const reached = [...result.executed, ...result.cached, ...(result.error ? [result.error.node_id] : [])];
    const branches: Record<string, BranchInfo> = {};
    for (const id of reached) {
      const branch = graph.nodes.get(id)?.branch;
      if (branch) branches[id] = branch;
    }
    if (Object.keys(branches).length > 0) result.branches = branches;
    sink.emit({ type: 'prompt_done', prompt_id: promptId, status, ms: performance.now() - started });
    return result;
  };

  let keys: Map<string, string>;
  try {
    keys = await computeKeys(graph, opts.env);
  } catch (err) {
    if (!(err instanceof FingerprintError)) throw err;
    const node = graph.nodes.get(err.nodeId)!;
    return fail(errorInfo(node, err.cause, node.literals));
  }

  const values = new Map<string, Record<string, unknown>>();
  const usesLeft = countUses(graph);
  /** The cached result of a node, except for a batch output whose files were deleted: it writes them again. */
  const cachedResult = (id: string): ReturnType<OutputCache['get']> => (resumed.rerun.has(id) ? undefined : cache.get(keys.get(id)!));
  for (const id of graph.order) {
    const hit = cachedResult(id);
    if (hit) {
      values.set(id, hit.outputs);
      result.cached.push(id);
      if (hit.files.length > 0) result.outputs[id] = hit.files;
    }
  }
  for (const [id, files] of resumed.resumed) {
    result.cached.push(id);
    result.outputs[id] = files;
  }
  sink.emit({ type: 'cached', prompt_id: promptId, nodes: result.cached });
  for (const id of result.cached) {
    const files = result.outputs[id];
    if (files) sink.emit({ type: 'node_done', prompt_id: promptId, node_id: id, cached: true, ms: 0, files, ...branchOf(id) });
    if (!resumed.resumed.has(id)) batch?.nodeDone(id, files ?? []);
  }

  const cachedSet = new Set(result.cached);
  for (const id of graph.order) {
    if (cachedSet.has(id)) continue;
    const node = graph.nodes.get(id)!;
    if (signal.aborted) return interrupted(id);
    if (batch?.blocked(id)) {
      release(node);
      continue;
    }
    // Two nodes of one run with the same content (sweep branches that differ only downstream, or
    // duplicated values) run once: the second finds the first's result in the cache.
    const earlier = cachedResult(id);
    if (earlier) {
      values.set(id, earlier.outputs);
      result.cached.push(id);
      if (earlier.files.length > 0) result.outputs[id] = earlier.files;
      sink.emit({ type: 'node_done', prompt_id: promptId, node_id: id, cached: true, ms: 0, files: earlier.files, ...branchOf(id) });
      batch?.nodeDone(id, earlier.files);
      release(node);
      continue;
    }
    let args: Record<string, unknown> = {};
    try {
      args = gatherArgs(graph, node, values, opts.env);
      batch?.nodeStarted(id);
      sink.emit({ type: 'node_start', prompt_id: promptId, node_id: id, node_type: node.def.id, ...branchOf(id) });
      const t0 = performance.now();
      const files: FileRef[] = [];
      const ctx = makeContext(opts, node, keys.get(id)!, files);
      const outputs = (await node.def.execute(args as never, ctx)) as Record<string, unknown>;
      for (const name of Object.keys(node.def.outputs)) {
        if (!outputs || outputs[name] === undefined) {
          throw new StudioError('NODE_FAILED', `the node returned no value for its output '${name}'`);
        }
      }
      const ms = performance.now() - t0;
      values.set(id, outputs);
      cache.set(keys.get(id)!, { outputs, files, bytes: bytesOf(outputs) });
      result.executed.push(id);
      result.timings_ms[id] = ms;
      if (files.length > 0) result.outputs[id] = files;
      sink.emit({ type: 'node_done', prompt_id: promptId, node_id: id, cached: false, ms, files, ...branchOf(id) });
      batch?.nodeDone(id, files);
    } catch (err) {
      if (err instanceof InterruptedError || (signal.aborted && isAbortError(err))) return interrupted(id);
      // One image of a batch that fails is reported by name; the other images run on.
      const info = errorInfo(node, err, args);
      if (!batch?.nodeFailed(id, info)) return fail(info);
      sink.emit({ type: 'error', prompt_id: promptId, ...info });
    }
    release(node);
  }
  return finish('success');

  /** Frees each input's value once its last consumer has run. */
  function release(node: CompiledNode): void {
    for (const [src] of nodeSources(node)) {
      const left = usesLeft.get(src)! - 1;
      usesLeft.set(src, left);
      if (left === 0) values.delete(src);
    }
  }

  function interrupted(nodeId: string): PromptResult {
    sink.emit({ type: 'interrupted', prompt_id: promptId, node_id: nodeId });
    return finish('interrupted');
  }

  function fail(info: NodeErrorInfo): PromptResult {
    result.error = info;
    sink.emit({ type: 'error', prompt_id: promptId, ...info });
    return finish('error');
  }
}

function errorInfo(node: CompiledNode, err: unknown, args: Record<string, unknown>): NodeErrorInfo {
  const code = err instanceof StudioError ? err.code : 'NODE_FAILED';
  const reason = err instanceof Error ? err.message : String(err);
  const where = err instanceof InputError ? '' : 'failed: ';
  return {
    node_id: node.id,
    node_type: node.def.id,
    node_title: node.title,
    code,
    message: `${node.title} (#${node.id}) ${where}${reason}`,
    inputs: summarise(args),
    ...(node.branch ? { branch: node.branch } : {}),
  };
}

function gatherArgs(
  graph: CompiledGraph,
  node: CompiledNode,
  values: Map<string, Record<string, unknown>>,
  env: NodeEnv,
): Record<string, unknown> {
  const args: Record<string, unknown> = { ...node.literals };
  for (const [name, [src, slot]] of Object.entries(node.links)) {
    // Slots index the producer's declared outputs, whatever order its execute() built them in.
    const outName = Object.keys(graph.nodes.get(src)!.def.outputs)[slot]!;
    args[name] = values.get(src)![outName];
    const widget = node.def.widgets[name];
    if (widget) {
      const reason = checkWidgetValue(widget, args[name], env);
      if (reason) throw new InputError(name, `the linked value is not valid here: ${reason}`);
    }
  }
  for (const [name, entries] of Object.entries(node.gathers)) {
    args[name] = entries.map(({ link: [src, slot], coords }): Branch<unknown> => {
      const outName = Object.keys(graph.nodes.get(src)!.def.outputs)[slot]!;
      return { value: values.get(src)![outName], coords, label: branchLabel(coords) };
    });
  }
  return args;
}

function countUses(graph: CompiledGraph): Map<string, number> {
  const uses = new Map<string, number>(graph.order.map((id) => [id, 0]));
  for (const node of graph.nodes.values()) {
    for (const [src] of nodeSources(node)) uses.set(src, (uses.get(src) ?? 0) + 1);
  }
  return uses;
}

function makeContext(opts: ExecuteOptions, node: CompiledNode, key: string, files: FileRef[]): NodeContext {
  const { sink, signal, promptId } = opts;
  const interval = opts.progressIntervalMs ?? 50;
  let lastProgress = 0;
  const eta = new EtaEstimator(performance.now());
  const checkAborted = (): void => {
    if (signal.aborted) throw new InterruptedError();
  };
  return {
    nodeId: node.id,
    promptId,
    signal,
    env: opts.env,
    extra: opts.extra ?? {},
    checkAborted,
    progress(value, max) {
      checkAborted();
      const now = performance.now();
      // Every report feeds the estimate, also those not sent.
      const left = eta.update(value, max, now);
      if (value < max && now - lastProgress < interval) return;
      lastProgress = now;
      sink.emit({
        type: 'progress',
        prompt_id: promptId,
        node_id: node.id,
        value,
        max,
        ...(left === null ? {} : { eta_ms: Math.round(left) }),
        ...(node.branch ? { branch: node.branch } : {}),
      });
    },
    preview(image, info) {
      const encode = opts.encodePreview;
      if (!encode || (sink.wantsPreviews && !sink.wantsPreviews())) return;
      encode(image).then(
        (p) => sink.emit({ type: 'preview', prompt_id: promptId, node_id: node.id, ...p, ...(info?.step === undefined ? {} : { step: info.step }) }),
        () => undefined, // a preview that cannot be encoded is not worth failing the node for
      );
    },
    rng(seed) {
      return new Rng(seed ?? seedFromString(key));
    },
    warn(message) {
      sink.emit({ type: 'warning', prompt_id: promptId, node_id: node.id, message: `${node.title} (#${node.id}): ${message}` });
    },
    addFile(ref) {
      files.push(ref);
    },
    ...(node.batch ? { batch: node.batch } : {}),
  };
}

/** Input values as a person can read them in an error report. */
function summarise(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    if (Array.isArray(value) && value.every((v) => v && typeof v === 'object' && 'coords' in v)) {
      out[name] = `${value.length} branch(es)`;
    } else if (value && typeof value === 'object' && 'data' in value && 'n' in value) {
      const t = value as ImageTensor;
      out[name] = `tensor ${shapeOf(t)}`;
    } else if (typeof value === 'string') {
      out[name] = value.length > 200 ? `${value.slice(0, 197)}...` : value;
    } else if (value === null || typeof value !== 'object') {
      out[name] = value;
    } else {
      out[name] = describe(value);
    }
  }
  return out;
}

function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
