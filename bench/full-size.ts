/**
 * `npm run bench:full`: the real-size SUPIR denoiser_step (GLVControl + LightGLVUNet, SDXL
 * geometry, 3.87 billion parameters) built from seeded random weights in the official key layout,
 * written as an fp16 and an fp32 model with external data, then opened in a FRESH child process
 * with onnxruntime's CPU provider that runs CFG steps (batch 2, default latent 32 = 256 px; two
 * steps, since an arena grows on the first and holds from the second on).
 * Prints, per precision: build time, weights on disk, the writer's peak RSS, and per session
 * variant: session-open time, step time, and the child's peak RSS (its maxRSS) against the weights'
 * bytes; then the fp16 output's error against the fp32 one (same weights, same inputs).
 *
 *   npx tsx bench/full-size.ts [--precision fp16,fp32] [--latent 32] [--batch 2] [--steps 2]
 *       [--variants app,arena,all,lean,basic,none] [--dir /tmp/supir-full-X] [--keep]
 *       [--rss-limit-gb 19] [--tiny]
 *
 * The weights are lazy (bench/random-weights.ts): drawn when the writer reads each tensor, never
 * all held, so the parent holds one tensor at a time and the child is the only holder of the model.
 * A watchdog kills a child whose RSS passes --rss-limit-gb (reported, not fatal). Needs ~16 GB of
 * disk per fp32 model (each is deleted once measured unless --keep) and, for fp32, ~17 GB of RAM.
 * Not run by CI; `npm run bench` runs it only with SUPIR_BENCH_FULL=1.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../nodes/api/rng.ts';
import { writeModel } from '../server/models/onnx/export.ts';
import { officialKeys, SDXL, TINY, type UnetConfig } from '../server/models/supir/official-layout.ts';
import { buildDenoiserStep } from '../server/models/supir/unet.ts';
import type { ProviderName } from '../nodes/api/runtime.ts';
import { sessionOptions } from '../server/runtime/session-options.ts';
import { lazyRandomWeights } from './random-weights.ts';

const SELF = fileURLToPath(import.meta.url);
const GB = 1e9;

/**
 * CPU session options tried, by name. `app` is what the runtime opens a model with
 * (server/runtime/session-options.ts: level all, float16 weights kept float16 on the CPU, no
 * memory arena for models of a GB or more); `arena` is the same with the arena, as the runtime had
 * it before; `all` is plain level all, which the runtime used before that (onnxruntime then folds
 * every Cast(float16 weight) into a float32 copy); the others are the remaining levers.
 */
export const VARIANTS: Record<string, { what: string; options: (threads: number, modelBytes: number) => Record<string, unknown> }> = {
  app: { what: "the runtime's options (session-options.ts)", options: (t, bytes) => ({ ...sessionOptions('cpu', t, bytes) }) },
  arena: { what: 'the runtime\'s options with the CPU memory arena (as before)', options: (t) => ({ ...sessionOptions('cpu', t, 0) }) },
  all: { what: 'plain graphOptimizationLevel all (float16 weights folded into float32 copies)', options: () => ({ graphOptimizationLevel: 'all' }) },
  lean: {
    what: 'app + session.disable_prepacking',
    options: (t, bytes) => {
      const app = sessionOptions('cpu', t, bytes) as { extra: Record<string, unknown> };
      return { ...app, enableCpuMemArena: false, extra: { ...app.extra, session: { disable_prepacking: '1' } } };
    },
  },
  basic: { what: 'graphOptimizationLevel basic', options: () => ({ graphOptimizationLevel: 'basic' }) },
  none: { what: 'graphOptimizationLevel disabled', options: () => ({ graphOptimizationLevel: 'disabled' }) },
};

/** What the child reports (one JSON line prefixed RESULT). */
export interface StepResult {
  openMs: number;
  stepMs: number[];
  rssAfterOpen: number;
  /** RSS after each step: a growing arena shows here. */
  rssAfterStep: number[];
  maxRss: number;
  finite: boolean;
  outRms: number;
}

/** The feeds of one CFG step at latent `side`, batch `batch` (seeded, so every child feeds the same). */
async function feedsFor(cfg: Pick<UnetConfig, 'ctx' | 'adm'>, side: number, batch: number): Promise<Record<string, import('onnxruntime-node').Tensor>> {
  const ort = await import('onnxruntime-node');
  const rng = new Rng(7);
  const f32 = (dims: number[]): InstanceType<typeof ort.Tensor> => new ort.Tensor('float32', rng.fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1))), dims);
  return {
    x: f32([batch, 4, side, side]),
    timesteps: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => 500n), [batch]),
    context: f32([batch, 77, cfg.ctx]),
    y: f32([batch, cfg.adm]),
    control: f32([batch, 4, side, side]),
    control_scale: new ort.Tensor('float32', Float32Array.of(1), []),
  };
}

/** What a child measurement is given (also on its command line). */
export interface ChildArgs {
  model: string;
  provider: ProviderName;
  /** CPU session options (VARIANTS); GPU providers use the runtime's. */
  variant: string;
  latent: number;
  batch: number;
  steps: number;
  /** The model's context width and vector width (SDXL: 2048, 2816). */
  ctx: number;
  adm: number;
  /** Where the child writes the last step's output (raw float32). */
  outFile?: string;
}

/** Child: open `model` with the provider's (or the CPU variant's) options, run `steps` steps, report. */
async function child(a: ChildArgs): Promise<void> {
  const { model, variant, provider, latent: side, batch, steps, outFile } = a;
  const cfg = { ctx: a.ctx, adm: a.adm };
  const ort = await import('onnxruntime-node');
  ort.env.logLevel = 'error';
  const threads = os.availableParallelism();
  // GPU providers get the runtime's options; the CPU the variant asked for.
  const options = provider === 'cpu' ? { executionProviders: ['cpu'], intraOpNumThreads: threads, logSeverityLevel: 3, ...VARIANTS[variant]!.options(threads, filesBytes(model)) } : sessionOptions(provider, threads);
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, options as import('onnxruntime-node').InferenceSession.SessionOptions);
  const openMs = performance.now() - t0;
  const rssAfterOpen = process.memoryUsage().rss;
  const feeds = await feedsFor(cfg, side, batch);
  const stepMs: number[] = [];
  const rssAfterStep: number[] = [];
  let out: Float32Array | undefined;
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    const r = await session.run(feeds);
    stepMs.push(performance.now() - t);
    rssAfterStep.push(process.memoryUsage().rss);
    out = r.out!.data as Float32Array;
  }
  let sq = 0;
  let finite = true;
  for (const v of out!) {
    if (!Number.isFinite(v)) finite = false;
    sq += v * v;
  }
  if (outFile) fs.writeFileSync(outFile, new Uint8Array(out!.buffer, out!.byteOffset, out!.byteLength));
  const result: StepResult = { openMs, stepMs, rssAfterOpen, rssAfterStep, maxRss: process.resourceUsage().maxRSS * 1024, finite, outRms: Math.sqrt(sq / out!.length) };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  await session.release();
}

/** The child is stopped when the machine has less than this available (shared machines). */
const MIN_AVAILABLE = 1.5e9;

/** MemAvailable of this machine, in bytes (Infinity where /proc/meminfo is unreadable). */
export function memAvailable(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

/** VmRSS of a live process, in bytes (0 once it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs a child measurement (a fresh process: nothing else holds the model) under an RSS watchdog. */
export function measureInChild(a: ChildArgs, limitBytes: number): Promise<{ result?: StepResult; killedAt?: number; lowMemory?: boolean; error?: string; polledPeak: number }> {
  const args = ['--child', a.model, '--provider', a.provider, '--variant', a.variant, '--latent', String(a.latent), '--batch', String(a.batch), '--steps', String(a.steps), '--ctx', String(a.ctx), '--adm', String(a.adm), ...(a.outFile ? ['--out', a.outFile] : [])];
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let polledPeak = 0;
    let killedAt: number | undefined;
    let lowMemory = false;
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setInterval(() => {
      const rss = rssOf(proc.pid!);
      polledPeak = Math.max(polledPeak, rss);
      // Its own limit, and the machine's: others' processes must not meet the kernel's OOM killer.
      if ((rss > limitBytes || memAvailable() < MIN_AVAILABLE) && killedAt === undefined) {
        killedAt = rss;
        lowMemory = rss <= limitBytes;
        proc.kill('SIGKILL');
      }
    }, 100);
    proc.on('close', (code, signal) => {
      clearInterval(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) resolve({ result: JSON.parse(line.slice(7)) as StepResult, polledPeak });
      else resolve({ ...(killedAt !== undefined ? { killedAt, lowMemory } : {}), error: `exit ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, polledPeak });
    });
  });
}

/** ‖a − ref‖ / ‖ref‖, max |a − ref| and the reference's rms (NaN anywhere gives NaN). */
export function compareOutputs(a: Float32Array, ref: Float32Array): { relL2: number; maxAbs: number; refRms: number } {
  if (a.length !== ref.length) throw new Error(`outputs differ in size: ${a.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
    max = Number.isNaN(d) ? NaN : Math.max(max, Math.abs(d));
  }
  return { relL2: Math.sqrt(num / den), maxAbs: max, refRms: Math.sqrt(den / a.length) };
}

export function filesBytes(file: string): number {
  return [file, `${file}.data`].reduce((a, f) => a + (fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
}

export interface FullSizeOptions {
  precisions: Array<'fp16' | 'fp32'>;
  variants: string[];
  latent: number;
  batch: number;
  steps: number;
  tiny: boolean;
  dir?: string;
  keep: boolean;
  rssLimitBytes: number;
  seed: number;
}

export async function measureFullSize(o: FullSizeOptions, log: (line: string) => void): Promise<void> {
  const cfg = o.tiny ? TINY : SDXL;
  // A folder of our own (removed at the end unless --keep); a given one keeps everything else in it.
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'supir-full-'));
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const keys = new Map([...officialKeys(cfg, 'unet'), ...officialKeys(cfg, 'control')]);
  const params = [...keys.values()].reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0);
  log(`${o.tiny ? 'tiny' : 'full-size (SDXL)'} denoiser_step, ${(params / 1e9).toFixed(3)} B parameters, random weights (seed ${o.seed}), CPU, ${os.availableParallelism()} threads, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM; latent ${o.latent}x${o.latent} (${o.latent * 8} px), batch ${o.batch}`);
  for (const [name, v] of Object.entries(VARIANTS)) if (o.variants.includes(name)) log(`  variant ${name}: ${v.what}`);
  const outs = new Map<string, Float32Array>();
  try {
    for (const precision of o.precisions) {
      const file = path.join(dir, `denoiser_step.${precision}.onnx`);
      const t0 = performance.now();
      const lazy = lazyRandomWeights(keys, o.seed);
      const { graph } = buildDenoiserStep(lazy.weights, { numHeadChannels: cfg.headChannels });
      const graphMs = performance.now() - t0;
      const readsAtBuild = lazy.reads();
      await writeModel(graph.record(), file, { fp16: precision === 'fp16' });
      const buildS = (performance.now() - t0) / 1000;
      written.push(file, `${file}.data`);
      const bytes = filesBytes(file);
      const writerRss = process.resourceUsage().maxRSS * 1024;
      log(
        `${precision}: built in ${buildS.toFixed(1)} s (graph ${(graphMs / 1000).toFixed(1)} s with ${readsAtBuild} tensors read, then ${lazy.reads()} drawn once each while writing); ` +
          `weights on disk ${(bytes / GB).toFixed(2)} GB; this process's peak RSS so far ${(writerRss / GB).toFixed(2)} GB`,
      );
      for (const variant of o.variants) {
        const outFile = path.join(dir, `out.${precision}.${variant}.f32`);
        written.push(outFile);
        const m = await measureInChild({ model: file, provider: 'cpu', variant, latent: o.latent, batch: o.batch, steps: o.steps, ctx: cfg.ctx, adm: cfg.adm, outFile }, o.rssLimitBytes);
        if (!m.result) {
          const why =
            m.killedAt === undefined
              ? m.error
              : m.lowMemory
                ? `stopped at ${(m.killedAt / GB).toFixed(2)} GB RSS: the machine had under ${(MIN_AVAILABLE / GB).toFixed(1)} GB available (other processes); run again when it is quieter`
                : `killed by the watchdog at ${(m.killedAt / GB).toFixed(2)} GB RSS (limit ${(o.rssLimitBytes / GB).toFixed(1)} GB)`;
          log(`  ${precision} ${variant.padEnd(6)}: no result: ${why}; polled peak ${(m.polledPeak / GB).toFixed(2)} GB`);
          continue;
        }
        const r = m.result;
        const peak = Math.max(r.maxRss, m.polledPeak);
        log(
          `  ${precision} ${variant.padEnd(6)}: session open ${(r.openMs / 1000).toFixed(1)} s (RSS then ${(r.rssAfterOpen / GB).toFixed(2)} GB), ` +
            `step ${r.stepMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' / ')} (RSS after ${r.rssAfterStep.map((b) => `${(b / GB).toFixed(2)}`).join(' / ')} GB), peak RSS ${(peak / GB).toFixed(2)} GB = ${(peak / bytes).toFixed(2)}x the weights' bytes` +
            `${r.finite ? '' : ', OUTPUT NOT FINITE'} (out rms ${r.outRms.toPrecision(3)})`,
        );
        outs.set(`${precision}.${variant}`, new Float32Array(fs.readFileSync(outFile).buffer.slice(0)));
      }
      if (!o.keep) for (const f of [file, `${file}.data`]) fs.rmSync(f, { force: true });
    }
    const a = [...outs].find(([k]) => k.startsWith('fp16.'));
    const b = [...outs].find(([k]) => k.startsWith('fp32.'));
    if (a && b) {
      const e = compareOutputs(a[1], b[1]);
      log(`fp16 vs fp32 output (${a[0]} vs ${b[0]}): relative L2 error ${e.relL2.toExponential(2)}, max abs ${e.maxAbs.toExponential(2)} (fp32 rms ${e.refRms.toPrecision(3)})`);
    }
  } finally {
    if (!o.keep) {
      for (const f of written) fs.rmSync(f, { force: true });
      if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

const invoked = process.argv[1] && path.resolve(process.argv[1]) === SELF;
if (invoked) {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      provider: { type: 'string', default: 'cpu' },
      ctx: { type: 'string' },
      adm: { type: 'string' },
      variant: { type: 'string', default: 'app' },
      out: { type: 'string' },
      precision: { type: 'string', default: 'fp16,fp32' },
      variants: { type: 'string', default: 'app,arena' },
      latent: { type: 'string', default: '32' },
      batch: { type: 'string', default: '2' },
      steps: { type: 'string', default: '2' },
      tiny: { type: 'boolean', default: false },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'rss-limit-gb': { type: 'string', default: '19' },
      seed: { type: 'string', default: '2024' },
    },
  });
  const cfg = values.tiny ? TINY : SDXL;
  if (values.child) {
    await child({
      model: values.child,
      provider: values.provider as ProviderName,
      variant: values.variant!,
      latent: Number(values.latent),
      batch: Number(values.batch),
      steps: Number(values.steps),
      ctx: values.ctx ? Number(values.ctx) : cfg.ctx,
      adm: values.adm ? Number(values.adm) : cfg.adm,
      ...(values.out ? { outFile: values.out } : {}),
    });
  } else {
    const variants = values.variants!.split(',');
    for (const v of variants) if (!VARIANTS[v]) throw new Error(`unknown variant '${v}' (${Object.keys(VARIANTS).join(', ')})`);
    await measureFullSize(
      {
        precisions: values.precision!.split(',') as Array<'fp16' | 'fp32'>,
        variants,
        latent: Number(values.latent),
        batch: Number(values.batch),
        steps: Number(values.steps),
        tiny: values.tiny!,
        ...(values.dir ? { dir: values.dir } : {}),
        keep: values.keep!,
        rssLimitBytes: Number(values['rss-limit-gb']) * GB,
        seed: Number(values.seed),
      },
      (line) => process.stdout.write(`${line}\n`),
    );
  }
}
