/**
 * A worker for test/runtime/worker-host.test.ts: serves requests through the shared worker host
 * (nodes/api/worker-host.ts) with behaviour chosen per request, so that the host's guarantees can
 * be tested apart from any model or image code.
 */
import os from 'node:os';
import { threadId } from 'node:worker_threads';
import { serveRequests } from '../../nodes/api/worker-host.ts';

export type EchoRequest =
  /** Returns data·2 in the same (transferred) buffer. */
  | { type: 'double'; data: Float32Array }
  /** Sends `count` progress messages 1..count, then replies count. */
  | { type: 'steps'; count: number }
  /** Throws: the request fails with kind 'told'. */
  | { type: 'fail'; message: string }
  /** Ends the thread with process.exit(code) while handling the request. */
  | { type: 'exit'; code: number }
  /** Throws `message` from a timer, outside any request: an uncaught exception ends the thread. */
  | { type: 'throw-later'; message: string }
  /** Allocates until the heap limit ends the thread. */
  | { type: 'hoard' }
  /** Sends a progress message every 2 ms until the main thread aborts the request. */
  | { type: 'spin' }
  | { type: 'sleep'; ms: number }
  /** The worker thread's nice value, its thread id and how many requests it saw aborted. */
  | { type: 'info' };

export type EchoReply = number | Float32Array | { nice: number; threadId: number; aborted: number };

let aborted = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

serveRequests<EchoRequest, EchoReply, number>(
  async (req, ctx) => {
    switch (req.type) {
      case 'double': {
        for (let i = 0; i < req.data.length; i++) req.data[i]! *= 2;
        return { value: req.data, transfer: [req.data.buffer as ArrayBuffer] };
      }
      case 'steps':
        for (let i = 1; i <= req.count; i++) ctx.progress(i);
        return { value: req.count };
      case 'fail':
        throw new Error(req.message);
      case 'exit':
        process.exit(req.code);
      case 'throw-later':
        setTimeout(() => {
          throw new Error(req.message);
        }, 1);
        await sleep(60_000);
        return { value: 0 };
      case 'hoard': {
        const hoard: number[][] = [];
        for (;;) hoard.push(new Array<number>(1 << 16).fill(hoard.length));
      }
      case 'spin':
        for (let i = 0; ; i++) {
          if (ctx.aborted()) {
            aborted++;
            throw new Error('stopped');
          }
          ctx.progress(i);
          await sleep(2);
        }
      case 'sleep':
        await sleep(req.ms);
        return { value: req.ms };
      case 'info':
        return { value: { nice: os.getPriority(0), threadId, aborted } };
    }
  },
  { classify: (err) => ({ kind: 'told', message: (err as Error).message }) },
);
