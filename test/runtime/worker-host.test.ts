/**
 * The one worker host (nodes/api/worker-host.ts) that both the degradation worker and the model
 * session workers run on, tested with a worker of its own (echo-worker.ts): transfers, progress,
 * failures, crash isolation, the heap limit, interrupts, thread priority, stop, and that an idle
 * worker does not keep the process alive.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { InterruptedError, StudioError } from '../../nodes/api/errors.ts';
import { WorkerHost, WorkerRequestError } from '../../nodes/api/worker-host.ts';
import type { EchoReply, EchoRequest } from './echo-worker.ts';

const ECHO = new URL('./echo-worker.ts', import.meta.url).href;
type Echo = WorkerHost<EchoRequest, EchoReply, number>;
const start = (opts: ConstructorParameters<typeof WorkerHost>[2] = {}): Echo => new WorkerHost<EchoRequest, EchoReply, number>('echo worker', ECHO, opts);

describe('the shared worker host', () => {
  it('transfers large buffers both ways instead of copying them, and reports progress in order', async () => {
    const host = start();
    try {
      const n = 16 << 20; // 64 MiB
      const data = new Float32Array(n).map((_, i) => i % 1000);
      const reply = (await host.request({ type: 'double', data }, { transfer: [data.buffer] })) as Float32Array;
      // Handed over: the caller's view is detached, and the reply is a fresh buffer of the full size.
      expect(data.byteLength).toBe(0);
      expect(reply).toBeInstanceOf(Float32Array);
      expect(reply.length).toBe(n);
      expect([reply[0], reply[1], reply[999], reply[1000], reply[n - 1]]).toEqual([0, 2, 1998, 0, ((n - 1) % 1000) * 2]);

      const seen: number[] = [];
      expect(await host.request({ type: 'steps', count: 5 }, { onProgress: (p) => seen.push(p) })).toBe(5);
      expect(seen).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await host.stop();
    }
  });

  it("fails a request with the worker's error and its kind, and serves the next one", async () => {
    const host = start();
    try {
      const err = await host.request({ type: 'fail', message: 'no such op' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerRequestError);
      expect((err as WorkerRequestError).failure).toEqual({ kind: 'told', message: 'no such op' });
      // A throwing progress callback fails its request.
      await expect(host.request({ type: 'steps', count: 3 }, { onProgress: () => { throw new Error('caller gave up'); } })).rejects.toThrow('caller gave up');
      expect(await host.request({ type: 'sleep', ms: 1 })).toBe(1);
      expect(host.alive).toBe(true);
    } finally {
      await host.stop();
    }
  });

  it('isolates a crash: every pending request fails with the reason, once, and the host is closed', async () => {
    const crashes: Error[] = [];
    const host = start({ crashError: (c) => new Error(`echo died: ${c.reason} (code ${c.code}, oom ${c.outOfMemory})`) });
    host.onCrash = (err) => crashes.push(err);
    const sleeping = host.request({ type: 'sleep', ms: 10_000 });
    const dying = host.request({ type: 'exit', code: 3 });
    await expect(dying).rejects.toThrow('echo died: it exited with code 3 (code 3, oom false)');
    await expect(sleeping).rejects.toThrow('echo died: it exited with code 3');
    expect(crashes.map((e) => e.message)).toEqual(['echo died: it exited with code 3 (code 3, oom false)']);
    expect(host.alive).toBe(false);
    await expect(host.request({ type: 'sleep', ms: 1 })).rejects.toThrow('echo worker: the worker is closed');

    // An exception thrown outside any request, with the default error.
    const other = start();
    const err = await other.request({ type: 'throw-later', message: 'boom' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).message).toBe('echo worker stopped unexpectedly (it threw boom)');

    // The test hook: the worker dies where it would reply.
    const hooked = start();
    hooked.crashOnNextReplyForTest();
    await expect(hooked.request({ type: 'sleep', ms: 1 })).rejects.toThrow('echo worker stopped unexpectedly (it exited with code 70)');
  });

  it('ends a worker over its heap limit with an out-of-memory error, not the process', async () => {
    const host = start({ heapMb: 32 });
    const err = await host.request({ type: 'hoard' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StudioError);
    expect(err).toMatchObject({ code: 'TOO_LARGE', message: 'echo worker ran out of memory (its JavaScript heap reached its 32 MB limit)' });

    // The test port's hook does the same while a request waits, and is refused without test hooks.
    const hooked = start({ heapMb: 32, testHooks: true });
    const waiting = hooked.request({ type: 'sleep', ms: 60_000 });
    hooked.exhaustHeapForTest();
    await expect(waiting).rejects.toMatchObject({ code: 'TOO_LARGE' });
    const plain = start();
    try {
      expect(() => plain.exhaustHeapForTest()).toThrow(/without test hooks/);
    } finally {
      await plain.stop();
    }
  });

  it('interrupts: rejects at once, the worker sees the flag and stops, its late reply is dropped', async () => {
    const host = start();
    try {
      const ac = new AbortController();
      let steps = 0;
      const job = host.request({ type: 'spin' }, { signal: ac.signal, onProgress: () => void (steps++ === 3 && ac.abort()) });
      await expect(job).rejects.toBeInstanceOf(InterruptedError);
      expect(host.inFlight).toBe(0);
      // The worker stopped spinning because of the flag (it counts what it saw aborted).
      for (let i = 0; i < 100 && ((await host.request({ type: 'info' })) as { aborted: number }).aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(((await host.request({ type: 'info' })) as { aborted: number }).aborted).toBe(1);
      await expect(host.request({ type: 'sleep', ms: 1 }, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(InterruptedError);
      expect(await host.request({ type: 'sleep', ms: 2 })).toBe(2);
    } finally {
      await host.stop();
    }
  });

  it('runs the worker thread below the main thread', async () => {
    const host = start();
    try {
      const main = os.getPriority(0);
      const info = (await host.request({ type: 'info' })) as { nice: number; threadId: number };
      expect(info.threadId).toBe(host.threadId);
      // Linux: the nice value is per thread, lowered by 10; elsewhere it would be the whole process, so it is left alone.
      expect(info.nice).toBe(process.platform === 'linux' ? Math.min(19, main + 10) : main);
      expect(os.getPriority(0)).toBe(main);
    } finally {
      await host.stop();
    }
  });

  it('stop() lets the work in hand finish, then ends the worker cleanly', async () => {
    const crashes: Error[] = [];
    const host = start();
    host.onCrash = (err) => crashes.push(err);
    const sleeping = host.request({ type: 'sleep', ms: 100 });
    await host.stop();
    await expect(sleeping).resolves.toBe(100);
    expect(crashes).toEqual([]);
    expect(host.alive).toBe(false);
    await host.stop(); // twice is fine
  });

  it('an idle worker does not keep the process alive', () => {
    const script = `
      import { WorkerHost } from './nodes/api/worker-host.ts';
      const host = new WorkerHost('echo', ${JSON.stringify(ECHO)});
      console.log('reply', await host.request({ type: 'sleep', ms: 5 }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('reply 5');
    expect(r.status).toBe(0); // not killed by the timeout (status null)
  }, 40_000);
});
