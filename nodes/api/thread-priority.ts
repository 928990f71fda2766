/**
 * Lowering a worker thread's CPU priority, for the threads that do heavy work next to the server
 * (the onnxruntime session worker, the degradation worker).
 */
import os from 'node:os';

/**
 * Heavy work yields the CPU to the server's event loop: on Linux the nice value belongs to the
 * calling thread (and is inherited by the threads it starts, such as onnxruntime's pool), so the
 * calling thread runs below the main thread, and the API stays responsive while it keeps every
 * core busy. Elsewhere the call would lower the whole process, so it is Linux only. Call it first
 * thing in the worker thread; never on the main thread.
 */
export function lowerThreadPriority(by = 10): void {
  if (process.platform !== 'linux') return;
  try {
    os.setPriority(0, Math.min(19, os.getPriority(0) + by));
  } catch {
    // Not permitted here: the work simply runs at the normal priority.
  }
}
