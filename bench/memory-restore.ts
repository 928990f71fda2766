/**
 * Large photos in bounded memory (issue 18): the peak resident size of a server process (the real
 * server: HTTP API, executor, node cache, runtime with onnxruntime sessions in worker threads, the
 * shipped nodes) while it restores a large photo, its ratio to the output's bytes, and what the
 * server holds once the run is over. Peak RSS is the kernel's high-water mark (VmHWM in
 * /proc/PID/status), reset just before the measured run (clear_refs 5), so it is exact rather than
 * sampled; it counts every thread: the event loop, the model workers and onnxruntime's arenas.
 *
 * Two workloads, each in a fresh server with the models already converted on disk (converted by
 * this process beforehand: a server converts a shipped model once, on first use):
 *
 * 1. x4 of a 1411x1411 photo with esrgan-medium x4, for real: Load Image → Load Upscale Model →
 *    Upscale Image (tile 0: 144 px runs) → Save Image (PNG), after a warm-up on a 256 px photo
 *    (the session open and its arena at full tile size).
 * 2. A 4-model MAXIM chain over a 2048x2048 photo (denoise → deblur → derain → low light, 128 px
 *    tiles overlapping by 16). MAXIM does ~1.5-2.4 M multiply-adds per pixel, about 5-10 GMAC/s
 *    on a 2-core CPU: the real chain would take over an hour here. So the measured run keeps
 *    everything that takes memory and makes the per-tile work cheap: first the four real MAXIM
 *    models are loaded and run (a 128 px photo, one tile each, so that their weights and what
 *    onnxruntime and malloc keep after a run are at their steady size, the sessions left open in
 *    the server); then, in the same server, the chain
 *    over 2048x2048 runs the real nodes, tiler, executor and cache with four cheap x1 ONNX models
 *    of MAXIM's I/O contract (1x3x128x128 in and out, one Conv each; four more sessions, which
 *    the real chain would not have). Reported: that run's peak, plus what a real MAXIM run takes
 *    beyond what stays resident after it (peak of the warm-up run minus the RSS after it), as
 *    the estimate for the real chain. Run twice: the server as it starts by default, and started
 *    with MALLOC_MMAP_THRESHOLD_=131072 (glibc then returns every large freed block at once).
 *
 * `npx tsx bench/memory-restore.ts` runs it alone; SUPIR_BENCH_MEMORY_SIDE=768 makes workload 1
 * smaller (a quick check).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { FIXED_TILE } from '../nodes/upscale/load-model.ts';
import { createModelLibrary } from '../server/models/library.ts';
import { GraphBuilder } from '../server/models/onnx/builder.ts';

const PHOTO = path.resolve(import.meta.dirname, '../assets/inputs/astronaut.png');
const CHILD_SERVER = path.resolve(import.meta.dirname, '../test/server/child-server.ts');
const X4_SIDE = Number(process.env.SUPIR_BENCH_MEMORY_SIDE) || 1411;
const CHAIN_SIDE = 2048;
const MAXIM_CHAIN = ['maxim-denoising', 'maxim-deblurring', 'maxim-deraining', 'maxim-enhancement'];
/**
 * glibc's malloc keeps freed blocks below its (self-raising) mmap threshold in its per-thread
 * arenas; onnxruntime's worker threads free a run's buffers there. Fixing the threshold makes
 * every large block an mmap that goes back to the system when freed. Read at process start only.
 */
const MMAP_ENV = 'MALLOC_MMAP_THRESHOLD_';
const MMAP_THRESHOLD = 131072;
/** The target for both workloads. */
const TARGET_BYTES = 1.5e9;

export interface MemoryRestoreResult {
  workload: string;
  /** Peak RSS of the server process during the measured run (for the chain: plus the MAXIM allowance). */
  peakBytes: number;
  /** Output bytes as uint8 (what Save Image encodes) and as float32 (what the node's output holds). */
  outputUint8Bytes: number;
  outputFloat32Bytes: number;
  beforeBytes: number;
  afterBytes: number;
  cacheDeltaBytes: number;
}

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function startServer(dataRoot: string, env: Record<string, string> = {}): Promise<Server> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD_SERVER, dataRoot], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SUPIR_LOG: 'error', ...env } });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const { url, pid } = JSON.parse(out.slice(0, nl)) as { url: string; pid: number };
      resolve({ url, pid, stop: () => (proc.kill('SIGTERM'), exited) });
    });
    proc.once('exit', (code) => reject(new Error(`the server exited (${code}) before it listened: ${stderr}`)));
  });
}

/** VmRSS and VmHWM (the peak since the last reset) of a process, in bytes. */
function rssOf(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Sets the process's peak back to its current RSS (Linux 4.0+). */
function resetPeak(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

async function cacheBytes(server: Server): Promise<number> {
  return ((await (await fetch(`${server.url}/api/system`)).json()) as { cache: { bytes: number } }).cache.bytes;
}

async function upload(server: Server, name: string, side: number): Promise<void> {
  const bytes = await sharp(PHOTO).resize(side, side, { fit: 'cover', kernel: 'lanczos3' }).removeAlpha().png().toBuffer();
  const res = await fetch(`${server.url}/api/upload?filename=${name}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  if (res.status !== 200) throw new Error(`upload of ${name} answered ${res.status}: ${await res.text()}`);
}

/** Queues the prompt and waits for it; throws unless it succeeded. */
async function run(server: Server, prompt: Record<string, unknown>): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt }) });
  const body = (await res.json()) as { prompt_id: string };
  if (res.status !== 200) throw new Error(`POST /api/prompt answered ${res.status}: ${JSON.stringify(body)}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const h = await fetch(`${server.url}/api/history/${body.prompt_id}`);
    if (h.status !== 200) continue;
    const entry = (await h.json()) as { status: string; error?: unknown };
    if (entry.status !== 'success') throw new Error(`the run ended ${entry.status}: ${JSON.stringify(entry.error ?? entry)}`);
    return (performance.now() - started) / 1000;
  }
}

/** Load Image → (Load model → Upscale Image) per model → Save Image. */
function chain(image: string, models: Array<{ name: string; tile: number }>): Record<string, unknown> {
  const prompt: Record<string, unknown> = { '1': { class_type: 'LoadImage', inputs: { image } } };
  let last: [string, number] = ['1', 0];
  models.forEach(({ name, tile }, i) => {
    const load = `m${i}`;
    const up = `u${i}`;
    prompt[load] = { class_type: 'LoadUpscaleModel', inputs: { model_name: name, provider: 'cpu' } };
    prompt[up] = { class_type: 'UpscaleImage', inputs: { model: [load, 0], image: last, tile_size: tile, overlap: 16, strength: 1 } };
    last = [up, 0];
  });
  prompt.save = { class_type: 'SaveImage', inputs: { image: last, filename_prefix: 'memory-bench' } };
  return prompt;
}

/** An x1 model with MAXIM's I/O contract (1x3xTxT in and out) that costs 9 multiply-adds per pixel. */
function cheapX1(tile: number, seed: number): Uint8Array {
  const g = new GraphBuilder({ name: `cheap-x1-${seed}` });
  const x = g.input('input', 'float32', [1, 3, tile, tile]);
  const w = new Float32Array(9);
  for (let c = 0; c < 3; c++) w[c * 4] = 1 - 0.01 * seed;
  const y = g.op('Conv', [x, g.initializer('w', w, [3, 3, 1, 1]), g.initializer('b', Float32Array.of(0.005 * seed, 0, 0), [3])]);
  g.output(y, 'output', 'float32', [1, 3, tile, tile]);
  return g.toBytes();
}

async function measured(server: Server, prompt: Record<string, unknown>, settleMs = 2000): Promise<{ before: number; peak: number; after: number; cacheDelta: number; seconds: number }> {
  await new Promise((r) => setTimeout(r, 1000));
  const cacheBefore = await cacheBytes(server);
  const before = rssOf(server.pid).rss;
  resetPeak(server.pid);
  const seconds = await run(server, prompt);
  const { peak } = rssOf(server.pid);
  await new Promise((r) => setTimeout(r, settleMs));
  return { before, peak, after: rssOf(server.pid).rss, cacheDelta: (await cacheBytes(server)) - cacheBefore, seconds };
}

export async function measureMemoryRestore(log: (line: string) => void): Promise<MemoryRestoreResult[]> {
  if (!fs.existsSync('/proc/self/clear_refs')) {
    log('  skipped: needs Linux /proc (VmHWM and clear_refs) to read a process peak exactly');
    return [];
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-memory-'));
  const mb = (b: number): string => `${Math.round(b / 1e6)} MB`;
  const gb = (b: number): string => `${(b / 1e9).toFixed(2)} GB`;
  const results: MemoryRestoreResult[] = [];
  try {
    const dataRoot = path.join(root, 'data');
    const dirs = createDataDirs(dataRoot);
    const library = createModelLibrary(dirs);
    await library.resolve('esrgan-medium x4');
    for (const name of MAXIM_CHAIN) await library.resolve(name, { tile: FIXED_TILE.cpu });
    const cheap = MAXIM_CHAIN.map((_, i) => `cheap-x1-${i + 1}.onnx`);
    cheap.forEach((file, i) => fs.writeFileSync(path.join(dirs.folders.models, file), cheapX1(FIXED_TILE.cpu, i + 1)));

    const report = (r: MemoryRestoreResult, note: string): void => {
      results.push(r);
      log(`  ${r.workload}: ${note}`);
      log(
        `    peak RSS ${gb(r.peakBytes)} (target ${gb(TARGET_BYTES)}: ${r.peakBytes <= TARGET_BYTES ? 'met' : 'MISSED'}); ` +
          `${(r.peakBytes / r.outputUint8Bytes).toFixed(1)}x the output as uint8 (${mb(r.outputUint8Bytes)}), ` +
          `${(r.peakBytes / r.outputFloat32Bytes).toFixed(2)}x as float32 (${mb(r.outputFloat32Bytes)})`,
      );
      log(`    server RSS before ${mb(r.beforeBytes)}, 2 s after ${mb(r.afterBytes)} (+${mb(r.afterBytes - r.beforeBytes)}; the node cache +${mb(r.cacheDeltaBytes)})`);
    };

    // 1. x4 of a large photo, for real.
    {
      const server = await startServer(dataRoot);
      try {
        await upload(server, 'warm.png', 256);
        await upload(server, 'big.png', X4_SIDE);
        await run(server, chain('warm.png', [{ name: 'esrgan-medium x4', tile: 0 }]));
        const m = await measured(server, chain('big.png', [{ name: 'esrgan-medium x4', tile: 0 }]));
        const out = (X4_SIDE * 4) ** 2 * 3;
        report(
          { workload: `x4 of ${X4_SIDE}x${X4_SIDE} (esrgan-medium x4)`, peakBytes: m.peak, outputUint8Bytes: out, outputFloat32Bytes: out * 4, beforeBytes: m.before, afterBytes: m.after, cacheDeltaBytes: m.cacheDelta },
          `${m.seconds.toFixed(0)} s, real model runs; Load Image → Upscale Image → Save Image (PNG)`,
        );
      } finally {
        await server.stop();
      }
    }

    // 2. The 4-model chain over 2048x2048: real MAXIM sessions resident, cheap per-tile work; as the
    // server starts by default, and with glibc's malloc returning large freed blocks to the system.
    for (const [how, env] of [
      ['', {}],
      [`, server started with ${MMAP_ENV}=${MMAP_THRESHOLD}`, { [MMAP_ENV]: String(MMAP_THRESHOLD) }],
    ] as const) {
      const server = await startServer(dataRoot, env);
      try {
        await upload(server, 'maxim-warm.png', FIXED_TILE.cpu);
        await upload(server, 'chain.png', CHAIN_SIDE);
        const maxim = MAXIM_CHAIN.map((name) => ({ name, tile: 0 }));
        const warm = await measured(server, chain('maxim-warm.png', maxim), 500);
        const maximExtra = Math.max(0, warm.peak - warm.after);
        // The cheap chain once at a small size: its sessions open and code paths loaded, as in 1.
        await run(server, chain('maxim-warm.png', cheap.map((name) => ({ name, tile: FIXED_TILE.cpu }))));
        const m = await measured(server, chain('chain.png', cheap.map((name) => ({ name, tile: FIXED_TILE.cpu }))));
        const out = CHAIN_SIDE ** 2 * 3;
        report(
          {
            workload: `4-model MAXIM chain over ${CHAIN_SIDE}x${CHAIN_SIDE}${how}`,
            peakBytes: m.peak + maximExtra,
            outputUint8Bytes: out,
            outputFloat32Bytes: out * 4,
            beforeBytes: m.before,
            afterBytes: m.after,
            cacheDeltaBytes: m.cacheDelta,
          },
          `the four MAXIM models (${MAXIM_CHAIN.join(', ')}) loaded and run on one 128 px tile each (${warm.seconds.toFixed(0)} s; ` +
            `server ${mb(warm.before)} → ${mb(warm.after)} with them open, a MAXIM run's peak ${mb(maximExtra)} above that); then, with them still open, ` +
            `the chain over ${CHAIN_SIDE}x${CHAIN_SIDE} through the real nodes with cheap x1 models of MAXIM's 128 px I/O in their place ` +
            `(${m.seconds.toFixed(0)} s, ${Math.ceil((CHAIN_SIDE - 16) / 112) ** 2} tiles per model): measured peak ${mb(m.peak)}; figure below = that + the MAXIM run's ${mb(maximExtra)}`,
        );
      } finally {
        await server.stop();
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await measureMemoryRestore((l) => process.stdout.write(`${l}\n`));
