/**
 * The GPU check, end to end, in one command (bench/gpu.sh runs it on a GPU machine; see README
 * "The GPU script"):
 *
 *   1. which providers run here (CUDA with its diagnosis, WebGPU), and the GPU (nvidia-smi);
 *   2. random full-size SUPIR + SDXL checkpoints in the official layout (F16, as published);
 *   3. `supir-studio convert --precision fp16` into a model pack;
 *   4. the shipped workflow (workflows/supir-restore.json) through `supir-studio run` with the pack
 *      and the provider set, and the image sized so the output is SIZE x SIZE: ms per sampler step
 *      (between the sampler's progress events), total time, per-node times, peak VRAM (nvidia-smi
 *      polled every 100 ms, less what was in use before) and the run's peak host RSS;
 *   5. fp16 vs fp32 error of one denoiser step at a small latent on the same provider: the pack's
 *      fp16 denoiser_step against an fp32 one built from the same random weights.
 *
 *   npx tsx bench/gpu.ts [--provider auto|cuda|webgpu|cpu] [--cpu] [--size 1024 | --latent 128]
 *       [--steps N] [--error-latent 32] [--tiny] [--work DIR] [--keep] [--budget-s 540]
 *
 * `--cpu --latent 16` checks every stage on a machine without a GPU (full size, about 25 GB of
 * disk); `--tiny` does the same with a tiny model of the same structure in a minute. Stages that
 * would start after --budget-s are skipped and named. The last lines are a summary table.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProviderName } from '../nodes/api/runtime.ts';
import { writeModel } from '../server/models/onnx/export.ts';
import { officialKeys, SUPIR_FULL, type SupirLayout } from '../server/models/supir/official-layout.ts';
import { buildDenoiserStep } from '../server/models/supir/unet.ts';
import { checkCuda, probeProviders } from '../server/runtime/providers.ts';
import { compareOutputs, filesBytes, measureInChild, memAvailable, rssOf } from './full-size.ts';
import { lazyRandomWeights, RANDOM_TINY, writeRandomCheckpoints } from './random-weights.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'bin', 'supir-studio.js');
const WORKFLOW = path.join(ROOT, 'workflows', 'supir-restore.json');
const PACK = 'supir-random-fp16';
const GB = 1e9;

interface Options {
  provider: ProviderName | 'auto';
  size: number;
  steps?: number;
  errorLatent: number;
  tiny: boolean;
  work: string;
  keep: boolean;
  budgetS: number;
  seed: number;
}

const summary: Array<[string, string]> = [];
const t0 = performance.now();
const elapsedS = (): number => (performance.now() - t0) / 1000;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const note = (what: string, value: string): void => {
  summary.push([what, value]);
  say(`  ${what}: ${value}`);
};

/** A command's output and exit, each line time-stamped (ms since it started). */
interface Ran {
  code: number | null;
  stdout: string;
  lines: Array<{ ms: number; text: string }>;
  ms: number;
  peakRss: number;
}

/** Runs `node args` (tsx loaded), echoing stderr lines, polling the process's RSS (killed above `rssLimit`). */
function runNode(args: string[], rssLimit = Infinity): Promise<Ran> {
  return new Promise((resolve) => {
    const start = performance.now();
    const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Ran['lines'] = [];
    let stdout = '';
    let partial = '';
    let peakRss = 0;
    const timer = setInterval(() => {
      peakRss = Math.max(peakRss, rssOf(proc.pid!));
      if (peakRss > rssLimit || (rssLimit < Infinity && memAvailable() < 1.5e9)) {
        say(`    killed at ${(peakRss / GB).toFixed(2)} GB RSS: ${peakRss > rssLimit ? `over the ${(rssLimit / GB).toFixed(0)} GB limit` : 'the machine had under 1.5 GB available'}`);
        proc.kill('SIGKILL');
      }
    }, 200);
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => {
      const parts = (partial + c.toString()).split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        lines.push({ ms: performance.now() - start, text });
        if (!/^\s+.*\d+\/\d+$/.test(text)) say(`    | ${text}`);
      }
    });
    proc.on('close', (code) => {
      clearInterval(timer);
      if (partial) lines.push({ ms: performance.now() - start, text: partial });
      resolve({ code, stdout, lines, ms: performance.now() - start, peakRss });
    });
  });
}

/** nvidia-smi's memory.used (MiB) polled every 100 ms until stopped; null where there is no nvidia-smi. */
function pollVram(): { stop: () => Promise<{ baseline: number; peak: number } | null> } {
  const samples: number[] = [];
  let proc: ReturnType<typeof spawn> | undefined;
  try {
    proc = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '100'], { stdio: ['ignore', 'pipe', 'ignore'] });
    proc.on('error', () => undefined);
    proc.stdout!.on('data', (c: Buffer) => {
      for (const l of c.toString().split('\n')) if (/^\s*\d+/.test(l)) samples.push(Number(l.trim().split(/\s*,\s*/)[0]));
    });
  } catch {
    proc = undefined;
  }
  return {
    stop: async () => {
      proc?.kill();
      return samples.length > 0 ? { baseline: samples[0]!, peak: Math.max(...samples) } : null;
    },
  };
}

/** One nvidia-smi query's answer; null where there is no nvidia-smi or it fails. */
function smi(query: string): Promise<string | null> {
  return new Promise((resolve) => {
    const p = spawn('nvidia-smi', [`--query-gpu=${query}`, '--format=csv,noheader'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.on('error', () => resolve(null));
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}

/** Width and height of a PNG file (IHDR). */
function pngSize(file: string): [number, number] {
  const b = fs.readFileSync(file);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

/**
 * The workflow's node ids by role, found by type (so a renumbered or rearranged workflow still
 * works), and an Image Resize between Load Image and SUPIR Resize if there is one.
 */
function workflowIds(): { loader: number; resize: number; sampler: number; shrink?: number } {
  type Node = { id: number; type: string; inputs?: Array<{ name: string; link: number | null }> };
  const wf = JSON.parse(fs.readFileSync(WORKFLOW, 'utf8')) as { nodes: Node[]; links: number[][] };
  const byType = (t: string): Node => {
    const n = wf.nodes.filter((x) => x.type === t);
    if (n.length !== 1) throw new Error(`${WORKFLOW} has ${n.length} ${t} nodes; expected one`);
    return n[0]!;
  };
  const resize = byType('SupirResize');
  const link = resize.inputs?.find((i) => i.name === 'image')?.link;
  const source = wf.nodes.find((n) => n.id === wf.links.find((l) => l[0] === link)?.[1]);
  byType('LoadImage');
  return { loader: byType('LoadSupirModel').id, resize: resize.id, sampler: byType('SupirSample').id, ...(source?.type === 'ImageResize' ? { shrink: source.id } : {}) };
}

/**
 * A square photo of side `side` (the centre of the shipped sample, resized): with SUPIR Resize at
 * upscale 2 and min_size 2·side, the sampler works at 2·side and the output is 2·side square.
 */
async function squareInput(file: string, side: number): Promise<void> {
  const { default: sharp } = await import('sharp');
  const src = path.join(ROOT, 'assets', 'inputs', 'chelsea.png');
  const { width = 0, height = 0 } = await sharp(src).metadata();
  const s = Math.min(width, height);
  await sharp(src).extract({ left: Math.floor((width - s) / 2), top: Math.floor((height - s) / 2), width: s, height: s }).resize(side, side).png().toFile(file);
}

async function chooseProvider(wanted: Options['provider']): Promise<ProviderName> {
  say('providers:');
  const cuda = await checkCuda(1);
  note('CUDA', cuda.ready ? `ready (${cuda.reason})` : `UNAVAILABLE: ${cuda.reason}`);
  if (!cuda.ready && cuda.advice) say(`    ${cuda.advice} (a GPU machine that reaches nothing needs them carried: see README, "The GPU script")`);
  if (!cuda.ready) for (const l of cuda.libraries.filter((x) => !x.path)) say(`    missing ${l.name}${l.elsewhere ? ` (found at ${l.elsewhere}, not on the loader path)` : ''}`);
  const statuses = await probeProviders(1);
  const webgpu = statuses.find((s) => s.name === 'webgpu')!;
  note('WebGPU', webgpu.available ? `ready (${webgpu.reason})` : `UNAVAILABLE: ${webgpu.reason}`);
  if (wanted === 'cpu') return 'cpu';
  if (wanted === 'cuda' && !cuda.ready) throw new Error(`CUDA was asked for and is unavailable: ${cuda.reason}`);
  if (wanted === 'webgpu' && !webgpu.available) throw new Error(`WebGPU was asked for and is unavailable: ${webgpu.reason}`);
  if (wanted !== 'auto') return wanted;
  if (cuda.ready) return 'cuda';
  if (webgpu.available) {
    say('  CUDA is unavailable, so the GPU runs go through WebGPU (onnxruntime\'s WebGPU provider on Vulkan)');
    return 'webgpu';
  }
  throw new Error('no GPU provider runs here (see above); --cpu runs the same stages on the CPU');
}

async function main(o: Options): Promise<number> {
  const layout: SupirLayout = o.tiny ? RANDOM_TINY : SUPIR_FULL;
  const cfg = layout.unet;
  const heads = o.tiny ? ['--num-head-channels', String(cfg.headChannels)] : [];
  say(`SUPIR Studio GPU check: ${o.tiny ? 'tiny random model' : 'full-size random SUPIR + SDXL'}, output ${o.size}x${o.size}, node ${process.version}, ${os.availableParallelism()} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`);
  const gpu = await smi('name,memory.total,driver_version');
  note('GPU', gpu ?? 'none (no nvidia-smi)');
  const provider = await chooseProvider(o.provider);
  note('provider', provider);

  const work = o.work;
  const data = path.join(work, 'data');
  const packDir = path.join(data, 'models', PACK);
  fs.mkdirSync(path.join(data, 'models'), { recursive: true });
  const over = (stage: string): boolean => {
    if (elapsedS() < o.budgetS) return false;
    note(stage, `SKIPPED: ${elapsedS().toFixed(0)} s spent of the ${o.budgetS} s budget`);
    return true;
  };

  // 2-3. Checkpoints and the pack (kept between runs of the same work folder and seed).
  const stamp = path.join(packDir, `.made-from-seed-${o.seed}${o.tiny ? '-tiny' : ''}`);
  if (fs.existsSync(stamp) && fs.existsSync(path.join(packDir, 'manifest.json'))) {
    note('pack', `reusing ${packDir}`);
  } else {
    fs.rmSync(packDir, { recursive: true, force: true });
    say('random checkpoints:');
    let t = performance.now();
    const ck = await writeRandomCheckpoints(path.join(work, 'ckpt'), layout, o.seed);
    note('checkpoints written', `${(ck.bytes / GB).toFixed(2)} GB F16 in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    say('convert --precision fp16:');
    t = performance.now();
    const conv = await runNode([CLI, 'convert', '--supir', ck.supir, '--sdxl', ck.sdxl, '--out', packDir, '--precision', 'fp16', ...heads]);
    if (conv.code !== 0) throw new Error(`convert failed (exit ${conv.code})`);
    const manifest = JSON.parse(fs.readFileSync(path.join(packDir, 'manifest.json'), 'utf8')) as { components: Record<string, { bytes: number; dtype: string }> };
    const bytes = Object.values(manifest.components).reduce((s, c) => s + c.bytes, 0);
    const denoiser = manifest.components.denoiser_step!;
    note('pack converted', `${(bytes / GB).toFixed(2)} GB (denoiser_step ${(denoiser.bytes / GB).toFixed(2)} GB ${denoiser.dtype}) in ${((performance.now() - t) / 1000).toFixed(1)} s, peak RSS ${(conv.peakRss / GB).toFixed(2)} GB`);
    fs.writeFileSync(stamp, '');
    if (!o.keep) fs.rmSync(path.join(work, 'ckpt'), { recursive: true, force: true });
  }

  // 4. The shipped workflow.
  let status = 0;
  if (!over('workflow')) {
    const ids = workflowIds();
    const input = path.join(work, 'input.png');
    await squareInput(input, o.size / 2);
    const sets = [`${ids.loader}.pack=${PACK}`, `${ids.loader}.provider=${provider}`, `${ids.resize}.upscale=2`, `${ids.resize}.min_size=${o.size}`, `${ids.resize}.multiple=64`];
    if (ids.shrink !== undefined) sets.push(`${ids.shrink}.mode=size`, `${ids.shrink}.width=${o.size / 2}`, `${ids.shrink}.height=${o.size / 2}`);
    if (o.steps) sets.push(`${ids.sampler}.steps=${o.steps}`);
    say(`workflow ${path.relative(ROOT, WORKFLOW)} --input ${o.size / 2}x${o.size / 2} photo --set ${sets.join(' --set ')}:`);
    const vram = pollVram();
    // On the CPU the models are in host memory: stop before the machine runs out (a GPU run holds them on the device).
    const run = await runNode([CLI, 'run', WORKFLOW, '--data', data, '--input', input, '--out', path.join(work, 'out'), ...sets.flatMap((s) => ['--set', s])], provider === 'cpu' ? 19 * GB : Infinity);
    const v = await vram.stop();
    if (run.code !== 0) {
      note('workflow', `FAILED (exit ${run.code}): ${run.lines.filter((l) => /error/i.test(l.text)).map((l) => l.text).slice(-2).join(' | ')}`);
      status = 1;
    } else {
      const steps = run.lines.filter((l) => new RegExp(`\\(#${ids.sampler}\\) \\d+/\\d+$`).test(l.text)).map((l) => l.ms);
      const gaps = steps.slice(1).map((ms, i) => ms - steps[i]!).sort((a, b) => a - b);
      const perStep = gaps.length > 0 ? gaps[Math.floor(gaps.length / 2)]! : NaN;
      const done = (id: number): number => Number(run.lines.find((l) => l.text.includes(`(#${id}) in `))?.text.match(/in ([\d.]+) ms/)?.[1] ?? NaN);
      const image = run.stdout.trim().split('\n').at(-1)!;
      const [w, h] = pngSize(image);
      note('output', `${w}x${h} ${path.basename(image)}${w === o.size && h === o.size ? '' : `: NOT ${o.size}x${o.size}`}`);
      if (w !== o.size || h !== o.size) status = 1;
      note('sampler', `${steps.length} steps, ${perStep.toFixed(0)} ms per step (median between progress events; CFG batch 2), node total ${(done(ids.sampler) / 1000).toFixed(1)} s incl. the denoiser session's start`);
      note('workflow total', `${(run.ms / 1000).toFixed(1)} s wall (process start to exit)`);
      const perNode = run.lines.filter((l) => l.text.startsWith('done ')).map((l) => l.text.replace(/^done /, '').replace(/: .*$/, ''));
      say(`  per node: ${perNode.join('; ')}`);
      note('peak VRAM', v ? `${((v.peak - v.baseline) / 1024).toFixed(2)} GiB over the ${(v.baseline / 1024).toFixed(2)} GiB in use before (peak ${(v.peak / 1024).toFixed(2)} GiB)` : 'n/a (no nvidia-smi)');
      note('peak host RSS', `${(run.peakRss / GB).toFixed(2)} GB`);
    }
  }

  // 5. fp16 vs fp32, one denoiser step at a small latent.
  if (o.errorLatent > 0 && !over('fp16 vs fp32')) {
    say(`fp16 vs fp32 denoiser_step at latent ${o.errorLatent} on ${provider}:`);
    const t = performance.now();
    const fp32 = path.join(work, 'denoiser_step.fp32.onnx');
    const keys = new Map([...officialKeys(cfg, 'unet'), ...officialKeys(cfg, 'control')]);
    const { graph } = buildDenoiserStep(lazyRandomWeights(keys, o.seed).weights, { numHeadChannels: cfg.headChannels });
    await writeModel(graph.record(), fp32);
    say(`  fp32 denoiser_step (${(filesBytes(fp32) / GB).toFixed(2)} GB) built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const outs: Float32Array[] = [];
    for (const [name, model] of [['fp16', path.join(packDir, 'denoiser_step.onnx')], ['fp32', fp32]] as const) {
      const outFile = path.join(work, `out.${name}.f32`);
      // On the CPU the same watchdog as bench:full (the fp32 model is 15.5 GB); a GPU session holds its weights on the device.
      const limit = provider === 'cpu' ? 19 * GB : Infinity;
      const m = await measureInChild({ model, provider, variant: 'app', latent: o.errorLatent, batch: 2, steps: 2, ctx: cfg.ctx, adm: cfg.adm, outFile }, limit);
      if (!m.result) throw new Error(`${name} step failed: ${m.error}`);
      say(`  ${name}: session open ${(m.result.openMs / 1000).toFixed(1)} s, steps ${m.result.stepMs.map((ms) => `${ms.toFixed(0)} ms`).join(' / ')}, out rms ${m.result.outRms.toPrecision(3)}`);
      outs.push(new Float32Array(fs.readFileSync(outFile).buffer.slice(0)));
    }
    const e = compareOutputs(outs[0]!, outs[1]!);
    note('fp16 vs fp32', `relative L2 ${e.relL2.toExponential(2)}, max abs ${e.maxAbs.toExponential(2)} (fp32 rms ${e.refRms.toPrecision(3)}; latent ${o.errorLatent}, batch 2; the fp32 weights unrounded)`);
    if (!(e.relL2 < 0.05)) status = 1;
    if (!o.keep) fs.rmSync(fp32, { force: true }), fs.rmSync(`${fp32}.data`, { force: true });
  }

  say(`\n=== SUPIR Studio GPU check (${(elapsedS()).toFixed(0)} s) ===`);
  for (const [what, value] of summary) say(`${what.padEnd(20)} ${value}`);
  return status;
}

const invoked = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invoked) {
  const { values } = parseArgs({
    options: {
      provider: { type: 'string', default: 'auto' },
      cpu: { type: 'boolean', default: false },
      size: { type: 'string' },
      latent: { type: 'string' },
      steps: { type: 'string' },
      'error-latent': { type: 'string', default: '32' },
      tiny: { type: 'boolean', default: false },
      work: { type: 'string', default: path.join(os.tmpdir(), `supir-gpu-check-${process.pid}`) },
      keep: { type: 'boolean', default: false },
      'budget-s': { type: 'string', default: '540' },
      seed: { type: 'string', default: '2024' },
    },
  });
  const size = values.size ? Number(values.size) : values.latent ? 8 * Number(values.latent) : 1024;
  const provider = values.cpu ? 'cpu' : (values.provider as Options['provider']);
  if (!['auto', 'cuda', 'webgpu', 'cpu'].includes(provider)) throw new Error(`--provider must be auto, cuda, webgpu or cpu`);
  if (!Number.isInteger(size / 64) || size < 128) throw new Error(`the output side must be a multiple of 64 (SUPIR Resize's multiple), at least 128; got ${size}`);
  // The work folder is removed at the end (unless --keep) only if this run made it.
  const madeWork = !fs.existsSync(values.work!);
  let code = 1;
  try {
    code = await main({
      provider,
      size,
      ...(values.steps ? { steps: Number(values.steps) } : {}),
      errorLatent: Number(values['error-latent']),
      tiny: values.tiny!,
      work: values.work!,
      keep: values.keep!,
      budgetS: Number(values['budget-s']),
      seed: Number(values.seed),
    });
  } catch (err) {
    say(`\nGPU check stopped: ${(err as Error).message}`);
    say(`\n=== SUPIR Studio GPU check (${elapsedS().toFixed(0)} s) ===`);
    for (const [what, value] of summary) say(`${what.padEnd(20)} ${value}`);
  } finally {
    if (!values.keep && madeWork) fs.rmSync(values.work!, { recursive: true, force: true });
  }
  process.exitCode = code;
}
