import fs from 'node:fs';
import path from 'node:path';
import { catalogue } from '../../nodes/index.ts';
import { createDataDirs, resolveInside } from '../../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type NodeEnv } from '../../nodes/api/env.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import {
  ApiPromptSchema,
  compilePrompt,
  executeGraph,
  isWorkflowFile,
  LruOutputCache,
  NodeRegistry,
  parseWorkflow,
  workflowToPrompt,
  type ApiPrompt,
  type EngineEvent,
  type PromptResult,
  type Workflow,
} from '../engine/index.ts';
import { providerFromEnv } from '../config.ts';
import { createModelLibrary } from '../models/library.ts';
import { createRuntime } from '../runtime/index.ts';
import { seedSampleInputs } from '../samples.ts';
import { readRunFile } from '../comfy/document.ts';
import { reportText } from '../comfy/report.ts';
import { applyToPrompt, applyToWorkflow, parseOverride, type Override } from './overrides.ts';
import { batchPrompt, type BatchOptions, type BatchReport } from './batch.ts';

export interface RunOptions {
  file: string;
  sets: string[];
  input?: string;
  out?: string;
  data?: string;
  json: boolean;
  maxPixels?: number;
  /** `--input-dir DIR` (with `--pattern`, `--sort`, `--start`, `--limit`): run over a folder of images. */
  batch?: BatchOptions;
}

/** What `run --json` prints: one object, output paths absolute. */
export interface RunSummary {
  status: PromptResult['status'];
  executed: string[];
  cached: string[];
  outputs: Record<string, string[]>;
  timings_ms: Record<string, number>;
  error?: PromptResult['error'];
  /** With `--input-dir` (or a Load Images (folder) node): every image, how it ended and its output paths. */
  batch?: BatchReport;
}

const LOAD_IMAGE = 'LoadImage';

/** Runs a workflow file headless, without a server. Throws StudioError for bad arguments. */
export async function runWorkflowFile(opts: RunOptions, log: (line: string) => void, signal: AbortSignal, onEvent?: (e: EngineEvent) => void): Promise<RunSummary> {
  const registry = new NodeRegistry(catalogue);
  if (opts.batch) {
    if (opts.input !== undefined) throw new StudioError('BAD_INPUT', '--input and --input-dir cannot be given together');
    if (!fs.statSync(opts.batch.dir, { throwIfNoEntry: false })?.isDirectory()) throw new StudioError('BAD_INPUT', `--input-dir ${opts.batch.dir} is not a folder`);
  }
  // --input-dir is the user's own folder: for this run it is the inputs folder.
  const dirs = createDataDirs(opts.data ?? 'data', { ...(opts.out ? { outputs: opts.out } : {}), ...(opts.batch ? { inputs: opts.batch.dir } : {}) });
  const env: NodeEnv = {
    dirs,
    limits: { ...DEFAULT_LIMITS, ...(opts.maxPixels ? { maxPixels: opts.maxPixels } : {}) },
    models: createModelLibrary(dirs),
  };
  // Created last, closed in any case: its session workers must not outlive the run.
  const runtime = createRuntime({ provider: providerFromEnv() });
  try {
    return await runWithEnv(opts, { ...env, runtime }, registry, log, signal, onEvent);
  } finally {
    await runtime.close();
  }
}

async function runWithEnv(opts: RunOptions, env: NodeEnv, registry: NodeRegistry, log: (line: string) => void, signal: AbortSignal, onEvent?: (e: EngineEvent) => void): Promise<RunSummary> {
  // The sample photos are copied into the data folder's inputs, never into the user's --input-dir.
  if (!opts.batch) seedSampleInputs(env.dirs);
  // A ComfyUI workflow, API prompt or PNG is imported first (server/comfy); its report goes to the log.
  const doc = readRunFile(opts.file, { registry, upscaleModels: env.models?.list('upscale').map((m) => m.name) ?? [] });
  if (doc.imported) log(reportText(doc.imported.report));
  const raw = doc.raw;
  const overrides = opts.sets.map(parseOverride);
  let workflow: Workflow | undefined;
  let prompt: ApiPrompt;
  if (isWorkflowFile(raw)) {
    workflow = parseWorkflow(raw);
    const loaders = workflow.nodes.filter((n) => n.type === LOAD_IMAGE).map((n) => String(n.id));
    applyToWorkflow(workflow, withInput(overrides, opts.input, loaders));
    prompt = workflowToPrompt(workflow, registry);
  } else {
    const parsed = ApiPromptSchema.safeParse(raw);
    if (!parsed.success) throw new StudioError('VALIDATION', `${opts.file} is neither a workflow file nor an API prompt: ${parsed.error.issues[0]?.message}`);
    prompt = parsed.data;
    const loaders = Object.keys(prompt).filter((id) => prompt[id]!.class_type === LOAD_IMAGE);
    applyToPrompt(prompt, withInput(overrides, opts.input, loaders));
  }
  if (opts.batch) batchPrompt(prompt, opts.batch);
  importInputFiles(prompt, env);
  const compiled = compilePrompt(prompt, registry, env);
  if (!compiled.ok) {
    const lines = compiled.errors.map((e) => `  node ${e.node_id ?? '-'}${e.node_type ? ` (${e.node_type})` : ''}${e.input ? ` input '${e.input}'` : ''}: ${e.message}`);
    throw new StudioError('VALIDATION', `the workflow cannot run:\n${lines.join('\n')}`);
  }
  const result = await executeGraph({
    promptId: 'cli',
    graph: compiled.graph,
    env,
    cache: new LruOutputCache(Number.MAX_SAFE_INTEGER),
    sink: {
      emit: progressThrottle((e) => {
        onEvent?.(e);
        // A batch says how far it is with its bar (onEvent); its images' nodes would print lines by the hundred.
        if (!compiled.graph.batch || !('branch' in e) || e.type === 'error') log(describeEvent(e, compiled.graph.nodes));
      }),
    },
    signal,
    extra: { workflow, prompt },
  });
  const where = (r: { folder: 'outputs' | 'inputs' | 'temp' | 'workflows' | 'models'; filename: string }): string => resolveInside(env.dirs, r.folder, r.filename);
  const batch = result.batch;
  return {
    status: result.status,
    executed: result.executed,
    cached: result.cached,
    outputs: Object.fromEntries(Object.entries(result.outputs).map(([id, refs]) => [id, refs.map(where)])),
    timings_ms: Object.fromEntries(Object.entries(result.timings_ms).map(([id, ms]) => [id, Math.round(ms * 100) / 100])),
    ...(result.error ? { error: result.error } : {}),
    ...(batch
      ? {
          batch: {
            total: batch.total,
            done: batch.done,
            resumed: batch.resumed,
            failed: batch.failed,
            items: batch.items.map((i) => ({
              position: i.position,
              source: i.source,
              status: i.status,
              ...(i.ms === undefined ? {} : { ms: i.ms }),
              outputs: i.files.map(where),
              ...(i.error ? { error: i.error } : {}),
            })),
          },
        }
      : {}),
  };
}

/** `--input FILE` becomes `--set <the Load Image node>.image=FILE`. */
function withInput(overrides: Override[], input: string | undefined, loaders: string[]): Override[] {
  if (input === undefined) return overrides;
  const named = overrides.find((o) => o.widget === 'image' && loaders.includes(o.node));
  if (named) return [...overrides.filter((o) => o !== named), { ...named, value: input }];
  if (loaders.length !== 1) {
    throw new StudioError('BAD_INPUT', `--input: the workflow has ${loaders.length} Load Image nodes; name one with --set NODE.image=FILE`);
  }
  return [...overrides, { node: loaders[0]!, widget: 'image', value: input }];
}

/**
 * Load Image reads only from the inputs folder. A file named on the command line is the user's
 * own choice, so it is copied into `inputs/cli/` and the node reads the copy.
 */
function importInputFiles(prompt: ApiPrompt, env: NodeEnv): void {
  for (const node of Object.values(prompt)) {
    const value = node.inputs.image;
    if (node.class_type !== LOAD_IMAGE || typeof value !== 'string') continue;
    if (!fs.existsSync(value) || !fs.statSync(value).isFile()) continue;
    const name = `cli/${path.basename(value)}`;
    const target = resolveInside(env.dirs, 'inputs', name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (path.resolve(value) !== target) fs.copyFileSync(value, target);
    node.inputs.image = name;
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new StudioError('NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StudioError('VALIDATION', `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A running node's progress is printed at most this often (its last report always). */
const PROGRESS_LINE_MS = 1000;

/**
 * Passes every event on, progress reports at most once a second per node (and the last one), so
 * that a node with hundreds of tiles prints a line a second, not a line a tile.
 */
export function progressThrottle(emit: (e: EngineEvent) => void, intervalMs = PROGRESS_LINE_MS, now: () => number = () => performance.now()): (e: EngineEvent) => void {
  const last = new Map<string, number>();
  return (e) => {
    if (e.type === 'progress' && e.value < e.max) {
      const t = now();
      const previous = last.get(e.node_id);
      if (previous !== undefined && t - previous < intervalMs) return;
      last.set(e.node_id, t);
    }
    emit(e);
  };
}

/** "37% · 12 s left" (or "37%" while the pace is not known yet). */
function progressText(value: number, max: number, etaMs: number | undefined): string {
  const percent = `${Math.floor((100 * value) / Math.max(max, 1e-9))}%`;
  const done = `${Number.isInteger(value) ? value : value.toFixed(1)}/${max}`;
  if (etaMs === undefined || value >= max) return `${done} (${percent})`;
  const s = Math.max(1, Math.ceil(etaMs / 1000));
  const left = s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${done} (${percent} · ${left} left)`;
}

function describeEvent(e: EngineEvent, nodes: Map<string, { title: string }>): string {
  const name = (id: string): string => `${nodes.get(id)?.title ?? id} (#${id})`;
  switch (e.type) {
    case 'cached':
      return e.nodes.length > 0 ? `cached: ${e.nodes.map(name).join(', ')}` : '';
    case 'node_start':
      return `running ${name(e.node_id)}`;
    case 'progress':
      return `  ${name(e.node_id)} ${progressText(e.value, e.max, e.eta_ms)}`;
    case 'node_done':
      return e.cached ? '' : `done ${name(e.node_id)} in ${e.ms.toFixed(1)} ms${e.files.length ? `: ${e.files.map((f) => f.filename).join(', ')}` : ''}`;
    case 'error':
      return `error: ${e.message}`;
    case 'warning':
      return `warning: ${e.message}`;
    case 'interrupted':
      return 'interrupted';
    default:
      return '';
  }
}
