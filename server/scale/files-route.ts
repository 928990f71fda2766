import express, { Router } from 'express';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerLimits } from '../config.ts';
import { isWorkerFolder } from './outputs.ts';
import type { RemoteQueue } from './remote-queue.ts';

/** Outputs can be far larger than uploaded inputs (a 16-bit 8K PNG): allow 16x the upload limit. */
const OUTPUT_FACTOR = 16;

/**
 * PUT /api/worker/files?prompt=ID&folder=outputs|temp&name=NAME[&replace=1] with the file as the
 * body: a worker hands in a file its job (a prompt, or one image of a batch) wrote. Answers
 * `{"filename"}`, the name the server keeps it under (the same for every attempt of the job), or
 * 409 once the prompt is recorded. `replace=1`: the name is the file's own (Save Image's `{name}`
 * in a batch); it is kept, and a file of that name is written over. Behind the
 * same Origin/Host check and access token as the rest of the API; only with `serve --queue`.
 */
export function workerFilesRouter(queue: RemoteQueue, limits: ServerLimits): Router {
  const router = Router();
  const raw = express.raw({ type: () => true, limit: limits.maxUploadBytes * OUTPUT_FACTOR });
  router.put('/api/worker/files', raw, async (req, res) => {
    const { prompt, folder, name } = req.query;
    if (typeof prompt !== 'string' || typeof name !== 'string' || !isWorkerFolder(folder)) {
      throw new StudioError('BAD_INPUT', 'PUT /api/worker/files needs ?prompt=ID&folder=outputs|temp&name=NAME');
    }
    if (!(await queue.accepts(prompt))) throw new StudioError('NOT_FOUND', `no queued or running prompt ${JSON.stringify(prompt)}`);
    const body: unknown = req.body;
    const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
    const filename = await queue.storeFile(prompt, folder, name, bytes, req.query.replace === '1');
    if (filename === null) {
      res.status(409).json({ error: { code: 'BAD_INPUT', message: `prompt ${prompt} has ended; this attempt's files are not kept` } });
      return;
    }
    res.json({ filename });
  });
  return router;
}
