import type { BatchItemStatus } from '../engine/batch-progress.ts';
import type { ApiPrompt, EngineEvent } from '../engine/index.ts';
import { StudioError } from '../../nodes/api/errors.ts';

/** `run --input-dir DIR` and the widgets of the batch it makes. */
export interface BatchOptions {
  dir: string;
  pattern?: string;
  sort?: string;
  start?: number;
  limit?: number;
}

const FOLDER_NODE = 'LoadImageFolder';
const LOAD_IMAGE = 'LoadImage';
const SAVE_IMAGE = 'SaveImage';

/**
 * Makes a prompt run over `--input-dir`, which the run uses as its inputs folder: its Load Images
 * (folder) node reads the folder's top (or, in a workflow with none, its one Load Image node
 * becomes one); Save Image prefixes without `{name}` or `{index}` get `_{name}` appended, so that
 * every output is named after its source and a second run resumes where the first stopped.
 */
export function batchPrompt(prompt: ApiPrompt, opts: BatchOptions): void {
  const ids = Object.keys(prompt);
  let folders = ids.filter((id) => prompt[id]!.class_type === FOLDER_NODE);
  if (folders.length === 0) {
    const loaders = ids.filter((id) => prompt[id]!.class_type === LOAD_IMAGE);
    if (loaders.length !== 1) {
      throw new StudioError('BAD_INPUT', `--input-dir: the workflow has no Load Images (folder) node and ${loaders.length} Load Image nodes; give it a Load Images (folder) node`);
    }
    const node = prompt[loaders[0]!]!;
    prompt[loaders[0]!] = { ...node, class_type: FOLDER_NODE, inputs: {} };
    folders = loaders;
  }
  if (folders.length > 1) throw new StudioError('BAD_INPUT', `--input-dir: the workflow has ${folders.length} Load Images (folder) nodes; a batch has one`);
  const inputs = prompt[folders[0]!]!.inputs;
  inputs.folder = '';
  if (opts.pattern !== undefined) inputs.pattern = opts.pattern;
  if (opts.sort !== undefined) inputs.sort = opts.sort;
  if (opts.start !== undefined) inputs.start = opts.start;
  if (opts.limit !== undefined) inputs.limit = opts.limit;
  for (const node of Object.values(prompt)) {
    const prefix = node.inputs.filename_prefix;
    if (node.class_type !== SAVE_IMAGE) continue;
    if (prefix === undefined) node.inputs.filename_prefix = '{name}';
    else if (typeof prefix === 'string' && !/\{(name|index)\}/.test(prefix)) node.inputs.filename_prefix = `${prefix}_{name}`;
  }
}

/** "1 min 02 s", "12 s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
}

type BatchEvent = Extract<EngineEvent, { type: 'batch' }>;

/** `[########------------] 23/50 images · 46% · 1 min 02 s left · scan_023.png` */
export function progressBar(e: BatchEvent, width = 24): string {
  const settled = e.done + e.resumed + e.failed;
  const fraction = e.total > 0 ? settled / e.total : 1;
  const filled = Math.round(fraction * width);
  const parts = [`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${settled}/${e.total} images`, `${Math.floor(fraction * 100)}%`];
  if (e.eta_ms !== undefined && settled < e.total) parts.push(e.eta_ms < 1000 ? 'under 1 s left' : `${formatDuration(e.eta_ms)} left`);
  if (e.resumed > 0) parts.push(`${e.resumed} already done`);
  if (e.failed > 0) parts.push(`${e.failed} failed`);
  if (e.running) parts.push(e.running);
  return parts.join(' · ');
}

/**
 * Draws the bar on stderr: rewritten in place on a terminal, else a line each time an image ends
 * (a log file gets one line per image, not one per node).
 */
export function batchBar(write: (text: string) => void, tty: boolean): { update(e: BatchEvent): void; end(): void } {
  let shown = false;
  let last = -1;
  return {
    update(e) {
      const settled = e.done + e.resumed + e.failed;
      if (tty) {
        write(`\r\x1b[2K${progressBar(e)}`);
        shown = true;
      } else if (settled !== last) {
        write(`${progressBar({ ...e, running: null })}\n`);
      }
      last = settled;
    },
    end() {
      if (shown) write('\n');
      shown = false;
    },
  };
}

/** A batch as `run` reports it (RunSummary.batch): output files as paths. */
export interface BatchReport {
  total: number;
  done: number;
  resumed: number;
  failed: number;
  items: Array<{ position: number; source: string; status: BatchItemStatus; ms?: number; outputs: string[]; error?: string }>;
}

/** The final table: one row per image (its place, file, status, time and output or error), then the totals. */
export function batchTable(batch: BatchReport, ms: number): string {
  const rows = batch.items.map((item) => [
    String(item.position),
    item.source,
    item.status === 'resumed' ? 'already done' : item.status,
    item.ms === undefined ? '' : `${(item.ms / 1000).toFixed(1)} s`,
    item.error ?? item.outputs.join(', '),
  ]);
  const head = ['#', 'image', 'status', 'time', 'output'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  const notRun = batch.total - batch.done - batch.resumed - batch.failed;
  const totals = `${batch.total} images: ${batch.done} done, ${batch.resumed} already done, ${batch.failed} failed${notRun > 0 ? `, ${notRun} not run` : ''} in ${formatDuration(ms)}`;
  return [line(head), ...rows.map(line), totals].join('\n');
}
