/**
 * One session worker seen from the main thread: the shared worker host (nodes/api/worker-host.ts)
 * started on session-worker.ts, with the runtime's heap limit and its words for a worker that
 * died (a crash, running out of memory): every pending request fails with them, the session is
 * closed, and the next load starts a fresh one.
 */
import { StudioError } from '../../nodes/api/errors.ts';
import { WorkerHost, type WorkerCrash } from '../../nodes/api/worker-host.ts';
import { createLogger } from '../log.ts';
import type { RequestBody, SessionReply } from './protocol.ts';

export { WorkerRequestError } from '../../nodes/api/worker-host.ts';

const log = createLogger('runtime');

const SESSION_WORKER = new URL('./session-worker.ts', import.meta.url).href;

/** Default limit of a session worker's JavaScript heap: tensors and onnxruntime's memory live outside it. */
export const DEFAULT_WORKER_HEAP_MB = 4096;

export type SessionHost = WorkerHost<RequestBody, SessionReply>;

export interface SessionHostOptions {
  /** The worker's old-generation heap limit (resourceLimits.maxOldGenerationSizeMb). */
  heapMb?: number;
  /** Opens the test port (exhaustHeapForTest); only tests set it. */
  testHooks?: boolean;
}

export function startSessionWorker(label: string, opts: SessionHostOptions = {}): SessionHost {
  const heapMb = opts.heapMb ?? DEFAULT_WORKER_HEAP_MB;
  return new WorkerHost<RequestBody, SessionReply>(label, SESSION_WORKER, { heapMb, testHooks: opts.testHooks === true, crashError: sessionCrashError });
}

function sessionCrashError(c: WorkerCrash): StudioError {
  const err = c.outOfMemory
    ? new StudioError(
        'TOO_LARGE',
        `the model worker ran out of memory (${c.label}: its JavaScript heap reached its ${c.heapMb} MB limit, set with SUPIR_WORKER_HEAP_MB); the session was closed and the next load starts a fresh one`,
      )
    : new StudioError('INTERNAL', `${c.label}: the session worker stopped unexpectedly (${c.reason}); the session was closed and the next load starts a fresh one`);
  log.warn(err.message);
  return err;
}
