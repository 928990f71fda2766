import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError } from '../../nodes/api/errors.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import DegradeRealESRGAN from '../../nodes/degrade/degrade.ts';
import { runOp } from '../../nodes/degrade/lib/ops.ts';
import { realEsrganConfig } from '../../nodes/degrade/lib/presets.ts';
import { resizeTorch } from '../../nodes/degrade/lib/resize.ts';
import { runInWorker } from '../../nodes/degrade/worker-pool.ts';
import { decodeImage } from '../../nodes/image/codec.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

const { env, cleanup } = tempEnv();
afterAll(cleanup);

const bytes = (img: ImageTensor): Buffer => Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
const defaults = Object.fromEntries(Object.entries(DegradeRealESRGAN.widgets).map(([k, w]) => [k, w.default]));

let photo: ImageTensor;
let big: ImageTensor;
beforeAll(async () => {
  photo = await decodeImage(fs.readFileSync(path.resolve(import.meta.dirname, '../../assets/inputs/astronaut.png')), env.limits);
  big = resizeTorch(photo, 1024, 1024, 'bicubic');
  // Start the worker (tsx loads the lib in the worker thread) before anything is timed.
  await runInWorker('degrade', resizeTorch(photo, 64, 64, 'area'), 1, { cfg: realEsrganConfig(), scale: 4 });
}, 60_000);

describe('degradation worker', () => {
  it('gives the same bytes and draws as the in-thread operation, and leaves the input alone', async () => {
    const cfg = { ...realEsrganConfig(), usm: true };
    for (const seed of [3, 4242]) {
      const before = Buffer.from(bytes(photo));
      const a = await runInWorker('degrade', photo, seed, { cfg, scale: 4 });
      const b = await runOp('degrade', photo, seed, { cfg, scale: 4 });
      expect(bytes(a.image).equals(bytes(b.image))).toBe(true);
      expect(a.params).toEqual(b.params);
      expect(bytes(photo).equals(before)).toBe(true);
    }
    const blur = { blur: realEsrganConfig().stage1.blur, kind: 'random' as const };
    const a = await runInWorker('blur', photo, 8, blur);
    const b = await runOp('blur', photo, 8, blur);
    expect(bytes(a.image).equals(bytes(b.image))).toBe(true);
  }, 60_000);

  it('keeps the event loop free while a 1024x1024 image is degraded: its longest busy stretch is well under what the same work blocks in-thread', async () => {
    /**
     * While `work` runs: the longest gap between 5 ms ticks, the longest time the loop was busy
     * within one gap (what blocking is; a gap can also be the OS not scheduling an idle thread on
     * this shared machine), the ticks that fired and the main thread's busy fraction overall.
     */
    const watch = async (work: () => Promise<unknown>): Promise<{ worst: number; worstBusy: number; busy: number; took: number; ticks: number }> => {
      let last = performance.now();
      let lastElu = performance.eventLoopUtilization();
      let worst = 0;
      let worstBusy = 0;
      let ticks = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        const elu = performance.eventLoopUtilization();
        worst = Math.max(worst, now - last);
        worstBusy = Math.max(worstBusy, performance.eventLoopUtilization(elu, lastElu).active);
        last = now;
        lastElu = elu;
        ticks++;
      }, 5);
      const elu = performance.eventLoopUtilization();
      const t0 = performance.now();
      await work();
      const end = performance.now();
      const busy = performance.eventLoopUtilization(elu).utilization;
      clearInterval(timer);
      // Up to the end too: a loop blocked until the work finished shows that stretch.
      worst = Math.max(worst, end - last);
      worstBusy = Math.max(worstBusy, performance.eventLoopUtilization(performance.eventLoopUtilization(), lastElu).active);
      return { worst, worstBusy, busy, took: end - t0, ticks };
    };
    const ctx = fakeContext(env);
    let out: ImageTensor | undefined;
    const run = await watch(async () => {
      out = (await runNode(DegradeRealESRGAN, { ...defaults, image: big, seed: 11 }, ctx)).image as ImageTensor;
    });
    // The baseline: the same operation on this thread. Load on the machine stretches both alike.
    const inThread = await watch(() => runOp('degrade', big, 11, { cfg: realEsrganConfig(), scale: 4 }));
    console.log(
      `1024x1024 degradation in the worker: ${run.took.toFixed(0)} ms, ${run.ticks} ticks, longest gap ${run.worst.toFixed(1)} ms, ` +
        `longest busy stretch ${run.worstBusy.toFixed(1)} ms, main thread busy ${(100 * run.busy).toFixed(1)} %; ` +
        `in-thread: ${inThread.took.toFixed(0)} ms, longest busy stretch ${inThread.worstBusy.toFixed(1)} ms, busy ${(100 * inThread.busy).toFixed(1)} %`,
    );
    expect([out!.h, out!.w]).toEqual([256, 256]);
    // The measurement can see blocking: in-thread, the stages hold the loop for long stretches.
    expect(inThread.worstBusy).toBeGreaterThan(0.1 * inThread.took);
    // Through the worker the loop keeps ticking, and no busy stretch comes near the in-thread ones.
    expect(run.ticks).toBeGreaterThanOrEqual(5);
    expect(run.worstBusy).toBeLessThan(0.5 * inThread.worstBusy);
    expect(run.busy).toBeLessThan(0.25 * inThread.busy);
    // Progress came through from the worker, in order, ending at the end.
    expect(ctx.progressCalls.length).toBeGreaterThanOrEqual(4);
    expect(ctx.progressCalls.at(-1)).toEqual([4, 4]);
  }, 60_000);

  it('stops at an interrupt at once, and the worker serves the next request', async () => {
    const ac = new AbortController();
    const job = runInWorker('degrade', big, 5, { cfg: realEsrganConfig(), scale: 4 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    const t0 = performance.now();
    await expect(job).rejects.toBeInstanceOf(InterruptedError);
    expect(performance.now() - t0).toBeLessThan(1000);
    // Through the node: an interrupted context fails the node with an InterruptedError.
    const ctx = fakeContext(env);
    ctx.abort();
    await expect(runNode(DegradeRealESRGAN, { ...defaults, image: photo }, ctx)).rejects.toBeInstanceOf(InterruptedError);
    const after = await runInWorker('degrade', photo, 5, { cfg: realEsrganConfig(), scale: 4 });
    const direct = await runOp('degrade', photo, 5, { cfg: realEsrganConfig(), scale: 4 });
    expect(bytes(after.image).equals(bytes(direct.image))).toBe(true);
  }, 60_000);

  it('reports what the worker threw as an error of the request', async () => {
    await expect(runInWorker('degrade', photo, 1, { cfg: realEsrganConfig(), scale: 1024 })).rejects.toThrow(/too small for scale 1024/);
  }, 30_000);

  it.runIf(process.platform === 'linux')('runs below the main thread: the worker lowered its own nice value, the event loop kept its own', () => {
    // beforeAll started the worker. Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice
    // value; the first task is the main thread (this test file's process, pool 'forks').
    const nices = fs.readdirSync('/proc/self/task').map((tid) => {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    });
    expect(nices[0]).toBe(0);
    expect(nices.filter((n) => n >= 10).length).toBeGreaterThanOrEqual(1);
  });
});
