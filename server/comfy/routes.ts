/**
 * ComfyUI's HTTP API beside ours, on the same origin, behind the same Origin/Host guard, token
 * and limits: POST /prompt (a ComfyUI API prompt, or one of ours, with `client_id`), GET /prompt,
 * GET /queue, POST /interrupt, GET /history[/{id}], GET /view, POST /upload/image and
 * GET /object_info[/{class}], answered in ComfyUI's shapes. And our own import/export endpoints:
 * POST /api/comfy/import, POST /api/comfy/export.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler, type Response } from 'express';
import { checkRelativeName, resolveInside, writeFileAtomic } from '../../nodes/api/data-dirs.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import { IMAGE_EXTENSIONS } from '../../nodes/image/load.ts';
import { parseWorkflow, workflowToPrompt, type ApiPrompt, type ValidationIssue } from '../engine/index.ts';
import type { StoredHistoryEntry } from '../engine/journal.ts';
import type { ServerContext } from '../http/context.ts';
import { sendError } from '../http/errors.ts';
import { checkImageBytes } from '../http/image-check.ts';
import { jsonLimits } from '../http/limits.ts';
import { viewRouter } from '../http/view.ts';
import { comfyImage, folderOfType, type ComfyBridge } from './bridge.ts';
import { isOurApiPrompt, resolveDocument } from './document.ts';
import { exportComfy } from './export.ts';
import { isComfyApiWorkflow } from './graph.ts';
import { importComfy } from './import.ts';
import { objectInfo } from './object-info.ts';

const upscaleModels = (ctx: ServerContext): string[] => ctx.env.models?.list('upscale').map((m) => m.name) ?? [];

/**
 * ComfyUI client scripts POST their JSON without saying it is JSON (Python's urllib sends
 * `application/x-www-form-urlencoded`). Browsers always send an Origin header with a POST, and
 * a page may only send application/json after a CORS preflight this server never grants: so a
 * body of another type is read as JSON only when no Origin header came with it (not a browser).
 */
function comfyJson(ctx: ServerContext): RequestHandler[] {
  const parse = express.json({ limit: ctx.config.limits.maxJsonBytes, type: () => true });
  const gate: RequestHandler = (req, res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (hasBody && !req.is('application/json') && req.headers.origin !== undefined) {
      return sendError(res, 415, 'BAD_INPUT', 'send the body as JSON with "Content-Type: application/json"');
    }
    next();
  };
  return [gate, parse, jsonLimits(ctx.config.limits)];
}

export function comfyRouter(ctx: ServerContext, bridge: ComfyBridge): Router {
  const router = Router();
  const json = comfyJson(ctx);

  router.post('/api/comfy/import', (req, res) => {
    const body = (req.body ?? {}) as { workflow?: unknown; prompt?: unknown; name?: unknown };
    const doc = resolveDocument({ workflow: body.workflow, prompt: body.prompt }, { registry: ctx.registry, upscaleModels: upscaleModels(ctx), ...(typeof body.name === 'string' ? { name: body.name.slice(0, 200) } : {}) });
    if (!doc.imported) throw new StudioError('VALIDATION', 'not a ComfyUI workflow or API prompt (send it as "workflow", or "prompt" for the API format)');
    res.json({ workflow: doc.imported.workflow, report: doc.imported.report });
  });

  router.post('/api/comfy/export', (req, res) => {
    const wf = parseWorkflow((req.body as { workflow?: unknown } | undefined)?.workflow);
    res.json(exportComfy(wf, ctx.registry));
  });

  router.post('/prompt', ...json, async (req, res) => {
    const body = (req.body ?? {}) as { prompt?: unknown; client_id?: unknown; front?: unknown; extra_data?: unknown };
    if (!isComfyApiWorkflow(body.prompt)) return comfyError(res, 'no_prompt', 'No prompt provided: send {"prompt": {"<id>": {"class_type", "inputs"}}}');
    const clientId = typeof body.client_id === 'string' ? body.client_id.slice(0, 200) : null;
    let prompt: ApiPrompt;
    let workflow: unknown;
    let ids: Record<string, string> = {};
    let report: unknown;
    try {
      if (isOurApiPrompt(body.prompt, ctx.registry)) prompt = body.prompt as ApiPrompt;
      else {
        const imported = importComfy(body.prompt, { registry: ctx.registry, upscaleModels: upscaleModels(ctx) });
        workflow = imported.workflow;
        ids = imported.comfyIds;
        report = imported.report;
        prompt = workflowToPrompt(imported.workflow, ctx.registry);
      }
    } catch (err) {
      if (err instanceof StudioError && err.code === 'VALIDATION') return comfyError(res, 'invalid_prompt', err.message);
      throw err;
    }
    const problem = await ctx.queue.storageProblem();
    if (problem) return void res.status(503).json({ error: { code: 'UNAVAILABLE', message: problem } });
    const result = ctx.queue.submit({ prompt, ...(workflow ? { workflow } : {}), ...(clientId ? { clientId } : {}), ...(body.front === true ? { front: true } : {}) });
    if (result.ok) {
      bridge.remember(result.id, ids, clientId);
      await ctx.queue.persisted(result.id);
      return void res.json({ prompt_id: result.id, number: result.number, node_errors: {}, ...(report ? { import_report: report } : {}) });
    }
    if (result.reason === 'invalid') {
      const comfyId = (id: string | null): string => (id === null ? '' : (ids[id] ?? id));
      const nodeErrors: Record<string, { errors: unknown[]; dependent_outputs: string[]; class_type: string }> = {};
      for (const e of result.errors as ValidationIssue[]) {
        const key = comfyId(e.node_id);
        const entry = (nodeErrors[key] ??= { errors: [], dependent_outputs: [], class_type: e.node_type ?? '' });
        entry.errors.push({ type: e.code, message: e.message, details: e.input ? `${e.input}: ${e.message}` : e.message, extra_info: e.input ? { input_name: e.input } : {} });
      }
      return void res.status(400).json({
        error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: result.errors.map((e) => e.message).join('; '), extra_info: {} },
        node_errors: nodeErrors,
        ...(report ? { import_report: report } : {}),
      });
    }
    if (result.reason === 'full') sendError(res, 429, 'QUEUE_FULL', result.message);
    else res.status(503).json({ error: { code: 'UNAVAILABLE', message: result.message } });
  });

  router.get('/prompt', (_req, res) => {
    const { running, pending } = ctx.queue.list();
    res.json({ exec_info: { queue_remaining: pending.length + (running ? 1 : 0) } });
  });

  router.get('/queue', (_req, res) => {
    const { running, pending } = ctx.queue.list();
    const row = (q: { number: number; id: string; client_id: string | null }): unknown[] => [q.number, q.id, {}, { client_id: q.client_id }, []];
    res.json({ queue_running: running ? [row(running)] : [], queue_pending: pending.map(row) });
  });

  router.post('/interrupt', ...json, (_req, res) => {
    ctx.queue.interrupt();
    res.json({});
  });

  router.get('/history', (req, res) => {
    const max = Math.min(10_000, Math.max(0, Number(req.query.max_items ?? 200) || 200));
    res.json(Object.fromEntries(ctx.queue.history().slice(-max).map((e) => [e.id, historyItem(e, bridge)])));
  });

  router.get('/history/:id', (req, res) => {
    const entry = ctx.queue.historyEntry(req.params.id);
    // ComfyUI answers {} for a prompt that is not (yet) in the history: clients poll until it is.
    res.json(entry ? { [entry.id]: historyItem(entry, bridge) } : {});
  });

  const view = viewRouter(ctx);
  router.get('/view', (req, res, next) => {
    const folder = folderOfType(typeof req.query.type === 'string' ? req.query.type : undefined);
    if (!folder) throw new StudioError('BAD_INPUT', 'type must be output, input or temp');
    const filename = req.query.filename;
    if (typeof filename !== 'string') throw new StudioError('BAD_INPUT', 'query parameter "filename" must be given once');
    const q = new URLSearchParams({ folder, file: filename });
    if (typeof req.query.subfolder === 'string' && req.query.subfolder !== '') q.set('subfolder', req.query.subfolder);
    req.url = `/api/view?${q.toString()}`;
    view(req, res, next);
  });

  router.post('/upload/image', express.raw({ type: () => true, limit: ctx.config.limits.maxUploadBytes + 64 * 1024 }), async (req, res) => {
    const form = parseMultipart(req.body as unknown, req.headers['content-type'] ?? '');
    const file = form.get('image');
    if (!file?.filename || file.data.length === 0) throw new StudioError('BAD_INPUT', 'send the image as the multipart field "image" with a file name');
    const type = form.get('type')?.data.toString('utf8') || 'input';
    if (type !== 'input') throw new StudioError('BAD_INPUT', `uploads go to the inputs folder only (type=input), not ${JSON.stringify(type)}`);
    if (file.data.length > ctx.config.limits.maxUploadBytes) throw new StudioError('TOO_LARGE', `the upload is larger than this server accepts (at most ${ctx.config.limits.maxUploadBytes} bytes)`);
    const filename = checkRelativeName(path.basename(file.filename.replace(/\\/g, '/')), 'filename');
    if (!(IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(filename).toLowerCase())) throw new StudioError('BAD_INPUT', `filename must end in one of ${IMAGE_EXTENSIONS.join(' ')}`);
    const subRaw = form.get('subfolder')?.data.toString('utf8') ?? '';
    const subfolder = subRaw === '' ? '' : checkRelativeName(subRaw, 'subfolder');
    await checkImageBytes(file.data, ctx.config.limits, `uploaded file ${JSON.stringify(filename)}`);
    const overwrite = ['true', '1'].includes(form.get('overwrite')?.data.toString('utf8') ?? '');
    const join = (name: string): string => (subfolder ? `${subfolder}/${name}` : name);
    let name = filename;
    if (!overwrite) {
      const ext = path.extname(filename);
      for (let n = 1; fs.existsSync(resolveInside(ctx.dirs, 'inputs', join(name))); n++) {
        if (n > 10_000) throw new StudioError('BAD_INPUT', 'too many files of that name; pass overwrite=true');
        name = `${filename.slice(0, filename.length - ext.length)} (${n})${ext}`;
      }
    }
    await writeFileAtomic(resolveInside(ctx.dirs, 'inputs', join(name)), file.data);
    res.json({ name, subfolder, type: 'input' });
  });

  router.get('/object_info', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(objectInfo(ctx.registry, ctx.env));
  });
  router.get('/object_info/:type', (req, res) => {
    const all = objectInfo(ctx.registry, ctx.env);
    res.json(Object.hasOwn(all, req.params.type) ? { [req.params.type]: all[req.params.type] } : {});
  });
  return router;
}

function comfyError(res: Response, type: string, message: string): void {
  res.status(400).json({ error: { type, message, details: '', extra_info: {} }, node_errors: {} });
}

/** A history entry as ComfyUI's GET /history gives it: prompt tuple, outputs by ComfyUI node id, status. */
function historyItem(e: StoredHistoryEntry, bridge: ComfyBridge): unknown {
  const stored = (e.workflow as { extra?: { comfy?: { ids?: Record<string, string> } } } | null)?.extra?.comfy?.ids;
  const outputs: Record<string, { images: unknown[] }> = {};
  for (const [node, refs] of Object.entries(e.outputs)) {
    const images = refs.map(comfyImage).filter((x) => x !== undefined);
    if (images.length === 0) continue;
    (outputs[bridge.comfyId(e.id, node, stored)] ??= { images: [] }).images.push(...images);
  }
  const ok = e.status === 'success';
  const messages: Array<[string, Record<string, unknown>]> = [['execution_start', { prompt_id: e.id, timestamp: e.started_at ?? e.created_at }]];
  if (ok) messages.push(['execution_success', { prompt_id: e.id, timestamp: e.finished_at }]);
  else if (e.error) messages.push(['execution_error', { prompt_id: e.id, node_id: bridge.comfyId(e.id, e.error.node_id, stored), node_type: e.error.node_type, exception_message: e.error.message, timestamp: e.finished_at }]);
  else messages.push(['execution_interrupted', { prompt_id: e.id, timestamp: e.finished_at }]);
  return {
    prompt: [e.number, e.id, e.prompt, { client_id: e.client_id }, Object.keys(outputs)],
    outputs,
    status: { status_str: ok ? 'success' : 'error', completed: ok, messages },
    meta: Object.fromEntries(Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id }])),
  };
}

interface Part {
  filename?: string;
  data: Buffer;
}

/** A multipart/form-data body's parts by field name (the last of a name wins). */
export function parseMultipart(body: unknown, contentType: string): Map<string, Part> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!/^multipart\/form-data/i.test(contentType) || !boundary) throw new StudioError('BAD_INPUT', 'send the upload as multipart/form-data');
  if (!Buffer.isBuffer(body)) throw new StudioError('BAD_INPUT', 'the upload body is empty');
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]!.trim()}`);
  const parts = new Map<string, Part>();
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const part = body.subarray(start + 2, next - 2); // after CRLF, before CRLF--boundary
    const split = part.indexOf('\r\n\r\n');
    if (split >= 0) {
      const head = part.subarray(0, split).toString('utf8');
      const name = /name="([^"]*)"/i.exec(head)?.[1];
      const filename = /filename="([^"]*)"/i.exec(head)?.[1];
      if (name !== undefined) parts.set(name, { ...(filename !== undefined ? { filename } : {}), data: part.subarray(split + 4) });
    }
    at = next;
  }
  return parts;
}
