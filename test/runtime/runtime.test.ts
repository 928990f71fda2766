import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError, StudioError } from '../../nodes/api/errors.ts';
import type { ModelSession, TensorData } from '../../nodes/api/runtime.ts';
import { createRuntime, ortBindingDir, type StudioRuntime } from '../../server/runtime/index.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { addOneModel, halfModel, heavyConvModel, tempDir } from './models.ts';

const dir = tempDir();
const addOne = addOneModel(dir);
const heavy = heavyConvModel(dir);
const half = halfModel(dir);
const heavyFeed = (size = 256) => ({ x: { data: new Float32Array(3 * size * size).fill(0.5), dims: [1, 3, size, size] } });
const vec = (...v: number[]) => ({ x: { data: Float32Array.from(v), dims: [v.length] } });
const providerLibraryInstalled = fs.existsSync(path.join(ortBindingDir() ?? '/nonexistent', 'libonnxruntime_providers_cuda.so'));

let rt: StudioRuntime;
beforeAll(() => {
  rt = createRuntime({ provider: 'cpu' });
});
afterAll(async () => {
  await rt.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('providers', () => {
  it('auto falls back to the CPU and says why the others were skipped', async () => {
    const auto = createRuntime();
    try {
      const statuses = await auto.providers();
      expect(statuses.map((s) => s.name).sort()).toEqual(['cpu', 'cuda', 'webgpu']);
      expect(statuses.find((s) => s.name === 'cpu')).toMatchObject({ available: true, reason: expect.stringMatching(/thread/) });
      const cuda = statuses.find((s) => s.name === 'cuda')!;
      if (!providerLibraryInstalled) expect(cuda).toEqual({ name: 'cuda', available: false, reason: 'provider library not installed — run npm run setup:cuda' });
      const session = await auto.load(addOne);
      const first = statuses.find((s) => s.available && s.name !== 'cpu');
      if (!first) {
        expect(session.provider).toBe('cpu');
        const skipped = statuses.filter((s) => s.name !== 'cpu').map((s) => `${s.name}: ${s.reason}`);
        expect(session.providerReport).toBe(`cpu (${skipped.join('; ')})`);
      }
      expect((await session.run(vec(1, 2))).y!.data).toEqual(Float32Array.of(2, 3));
    } finally {
      await auto.close();
    }
  });

  it('refuses a forced provider that is not available with a clear error, and keeps working', async () => {
    const statuses = await rt.providers();
    const missing = statuses.find((s) => !s.available);
    if (!missing) return; // every provider works on this machine: nothing to refuse
    const err = await rt.load(addOne, { provider: missing.name }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe('BAD_INPUT');
    expect((err as StudioError).message).toBe(`execution provider '${missing.name}' is not available here: ${missing.reason}`);
    const session = await rt.load(addOne);
    expect(session.providerReport).toBe('cpu (requested)');
    expect((await session.run(vec(5))).y!.data).toEqual(Float32Array.of(6));
  });
});

describe('sessions', () => {
  it('describes inputs and caches a session per file version', async () => {
    const a = await rt.load(addOne);
    expect(a.inputs).toEqual([{ name: 'x', dtype: 'float32', dims: ['n'] }]);
    expect(a.outputs).toEqual([{ name: 'y', dtype: 'float32', dims: ['n'] }]);
    expect((await rt.load(addOne)).id).toBe(a.id);
    const copy = addOneModel(dir, 'rewritten.onnx');
    const before = await rt.load(copy);
    fs.utimesSync(copy, new Date(), new Date(Date.now() + 5000));
    const after = await rt.load(copy);
    expect(after.id).not.toBe(before.id);
    expect(rt.stats().sessions.map((s) => s.id)).not.toContain(before.id);
  });

  it('runs an fp16 model with float32 data at the interface', async () => {
    const s = await rt.load(half);
    expect(s.inputs[0]!.dtype).toBe('float16');
    expect(s.outputs[0]!.dtype).toBe('float16');
    const out = await s.run(vec(0, 1, -3, 1000.25, 1 / 3));
    expect(out.y!.data).toBeInstanceOf(Float32Array);
    // 2x + 0.5 in fp16: 1/3 becomes 0.33325195 on the way in; 2000.5 rounds to 2000 (ulp 1 at 2^10..2^11).
    expect([...out.y!.data]).toEqual([0.5, 2.5, -5.5, 2000, 1.166015625]);
  });

  it('keeps the caller\'s arrays intact and rejects feeds that do not fit', async () => {
    const s = await rt.load(addOne);
    const feeds = vec(1, 2, 3);
    await s.run(feeds);
    expect([...feeds.x.data]).toEqual([1, 2, 3]);
    await expect(s.run({})).rejects.toThrow(/input 'x' is missing/);
    await expect(s.run({ ...feeds, z: feeds.x })).rejects.toThrow(/no input 'z'/);
    await expect(s.run({ x: { data: new Float32Array(4), dims: [2, 2] } })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(s.run({ x: { data: new Float32Array(4), dims: [5] } })).rejects.toThrow(/expects \[n\], got \[5\] with 4 values/);
  });

  it('names the file when it is missing, not a file, or not a model', async () => {
    const missing = path.join(dir, 'nope.onnx');
    await expect(rt.load(missing)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `model file not found: ${missing}` });
    await expect(rt.load(dir)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining(dir) });
    const corrupt = path.join(dir, 'corrupt.onnx');
    fs.writeFileSync(corrupt, fs.readFileSync(heavy).subarray(0, 300));
    const err = (await rt.load(corrupt).catch((e: unknown) => e)) as StudioError;
    expect(err).toBeInstanceOf(StudioError);
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(new RegExp(`^cannot load model ${corrupt}: `));
  });
});

describe('runs', () => {
  let a: ModelSession;
  let b: ModelSession;
  beforeAll(async () => {
    a = await rt.load(heavy);
    b = await rt.load(addOne);
    await a.run(heavyFeed(32)); // warm up
  });

  it('serialises runs on one session and lets another session run meanwhile', async () => {
    const done: string[] = [];
    const note = (name: string) => (r: unknown) => (done.push(name), r);
    // A small run queued behind a heavy one on the same session waits for it...
    const big = a.run(heavyFeed(384)).then(note('heavy'));
    const small = a.run(heavyFeed(8)).then(note('small, same session'));
    // ...while a run on another session finishes first.
    const other = b.run(vec(1)).then(note('other session'));
    const [bigOut, smallOut, otherOut] = (await Promise.all([big, small, other])) as Array<Record<string, TensorData>>;
    if (!bigOut || !smallOut || !otherOut) throw new Error('missing results');
    expect(done).toEqual(['other session', 'heavy', 'small, same session']);
    expect(bigOut.y!.dims).toEqual([1, 3, 384, 384]);
    expect(smallOut.y!.dims).toEqual([1, 3, 8, 8]);
    expect(otherOut.y!.data).toEqual(Float32Array.of(2));
  });

  it('interrupts runs still waiting for their turn', async () => {
    const controller = new AbortController();
    const order: string[] = [];
    const first = a.run(heavyFeed(384), { signal: controller.signal }).then(() => order.push('first done'));
    const second = a.run(heavyFeed(384), { signal: controller.signal }).catch((err: unknown) => {
      order.push('second rejected');
      return err;
    });
    setTimeout(() => controller.abort(), 10);
    // The run already in the worker finishes; the waiting one is dropped at once, not after it.
    expect(await second).toBeInstanceOf(InterruptedError);
    await first;
    expect(order).toEqual(['second rejected', 'first done']);
    await expect(a.run(heavyFeed(8), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(InterruptedError);
    await expect(a.run(heavyFeed(8))).resolves.toHaveProperty('y');
  });

  it('keeps the event loop ticking during a long run: its longest stall is a small part of what the same run on the main thread blocks', async () => {
    /**
     * While `work` runs: how many 5 ms timer callbacks fired, and the longest gap between two
     * (counting from the start and up to the end, so a loop blocked for the whole run shows a gap
     * as long as the run).
     */
    const watch = async (work: () => Promise<unknown>) => {
      let ticks = 0;
      const t0 = performance.now();
      let last = t0;
      let worst = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
        ticks++;
      }, 5);
      await work();
      const end = performance.now();
      clearInterval(timer);
      return { ticks, worst: Math.max(worst, end - last), took: end - t0 };
    };
    const size = 512;
    // The baseline: the same model, input and thread count in onnxruntime on this thread. Load on
    // the machine stretches both runs alike, so their ratio measures the program, not the machine.
    const local = await ort.InferenceSession.create(heavy, { intraOpNumThreads: rt.threads });
    try {
      const feed = () => ({ x: new ort.Tensor('float32', heavyFeed(size).x.data, [1, 3, size, size]) });
      await local.run(feed()); // warm-up, as the worker's session had
      const inWorker = await watch(() => a.run(heavyFeed(size)));
      const onMain = await watch(() => local.run(feed()));
      process.stdout.write(
        `heavy ${size}x${size}: in the worker ${inWorker.took.toFixed(0)} ms, ${inWorker.ticks} ticks, longest gap ${inWorker.worst.toFixed(1)} ms; ` +
          `on the main thread ${onMain.took.toFixed(0)} ms, ${onMain.ticks} ticks, longest gap ${onMain.worst.toFixed(1)} ms\n`,
      );
      // The measurement can see blocking: on the main thread the loop stalls for most of the run.
      expect(onMain.worst).toBeGreaterThan(0.75 * onMain.took);
      // In the worker the loop keeps running: timers fire during the run, and no stall comes near
      // what the same work costs the loop when it runs here.
      expect(inWorker.ticks).toBeGreaterThanOrEqual(5);
      expect(inWorker.worst).toBeLessThan(0.25 * onMain.worst);
    } finally {
      await local.release();
    }
  });
});

describe('failures and memory', () => {
  it('fails the pending runs when the worker dies, and the next load starts afresh', async () => {
    const s = await rt.load(heavy);
    rt.crashWorkerForTest(s.id);
    const running = s.run(heavyFeed(64));
    const queued = s.run(heavyFeed(8));
    await expect(running).rejects.toThrow(/session worker stopped unexpectedly.*next load starts a fresh one/);
    await expect(queued).rejects.toThrow(/stopped unexpectedly/);
    await expect(s.run(heavyFeed(8))).rejects.toThrow(/stopped unexpectedly/);
    const fresh = await rt.load(heavy);
    expect(fresh.id).not.toBe(s.id);
    await expect(fresh.run(heavyFeed(8))).resolves.toHaveProperty('y');
  });

  it('releases a session during a run safely: the run in flight finishes, queued ones are refused', async () => {
    // Terminating a worker inside onnxruntime's native run would abort the whole process, so a
    // release lets the current run end first.
    const s = await rt.load(heavy);
    const running = s.run(heavyFeed(384));
    const queued = s.run(heavyFeed(8));
    await new Promise((r) => setTimeout(r, 20));
    await rt.release(s.id);
    await expect(running).resolves.toHaveProperty('y');
    await expect(queued).rejects.toThrow(/released; load the model again/);
    expect(rt.stats().sessions.map((x) => x.id)).not.toContain(s.id);
  });

  it('closes the least recently used idle sessions over the memory budget and reopens them on use', async () => {
    const files = ['m1.onnx', 'm2.onnx', 'm3.onnx'].map((n) => addOneModel(dir, n));
    const size = fs.statSync(files[0]!).size * 2;
    const small = createRuntime({ provider: 'cpu', memoryBudgetBytes: size * 2 });
    try {
      const [s1, s2] = [await small.load(files[0]!), await small.load(files[1]!)];
      await s1.run(vec(1)); // s1 is now the more recently used
      const s3 = await small.load(files[2]!);
      const open = () => small.stats().sessions.filter((s) => s.open).map((s) => s.id);
      expect(open().sort()).toEqual([s1.id, s3.id].sort());
      expect(small.stats().estimatedBytes).toBeLessThanOrEqual(size * 2);
      // An evicted handle still works: its next run reopens it (and closes another).
      expect((await s2.run(vec(41))).y!.data).toEqual(Float32Array.of(42));
      expect(open()).toContain(s2.id);
      expect(open()).toHaveLength(2);
      await small.release(s2.id);
      await expect(s2.run(vec(1))).rejects.toThrow(/released/);
      expect(small.stats().sessions.map((s) => s.id)).not.toContain(s2.id);
    } finally {
      await small.close();
    }
    expect(small.stats().sessions).toEqual([]);
    await expect(small.load(files[0]!)).rejects.toThrow(/closed/);
  });
});

describe('int64 inputs', () => {
  it('carries int64 ids into a model (a Gather from an embedding table)', async () => {
    const g = new GraphBuilder({ name: 'gather' });
    const ids = g.input('ids', 'int64', ['n']);
    const table = g.initializer('table', Float32Array.of(10, 11, 12, 13), [4]);
    g.output(g.op('Gather', [table, ids], { axis: 0 }), 'y', 'float32', ['n']);
    const file = path.join(tempDir(), 'gather.onnx');
    fs.writeFileSync(file, g.toBytes());
    const rt = createRuntime({ provider: 'cpu' });
    try {
      const s = await rt.load(file);
      expect(s.inputs[0]).toMatchObject({ name: 'ids', dtype: 'int64' });
      const out = await s.run({ ids: { data: BigInt64Array.of(3n, 0n, 2n), dims: [3] } });
      expect(Array.from(out.y!.data)).toEqual([13, 10, 12]);
      await expect(s.run({ ids: { data: Float32Array.of(1), dims: [1] } })).rejects.toThrow(/input 'ids' is int64, got float32 data/);
    } finally {
      await rt.close();
    }
  });
});
