/** `npm run bench`: prints each benchmark's figures, as ratios against a baseline of the same run. */
import { measureAttention } from './attention.ts';
import { measureConvert } from './convert.ts';
import { measureDegrade } from './degrade.ts';
import { measureExecutorOverhead } from './executor-overhead.ts';
import { measureFullSize } from './full-size.ts';
import { measureMemory } from './memory.ts';
import { measureMemoryRestore } from './memory-restore.ts';
import { measureSupirStep } from './supir-step.ts';
import { measureUpscale } from './upscale.ts';
import { measureQueue } from './queue.ts';
import { measureRestoreQuality } from './restore-quality.ts';

const r = await measureExecutorOverhead();
const fmt = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
const lines = [
  `executor overhead, ${r.nodes}-node chain of cheap nodes (median of rounds):`,
  `  node's own work (baseline, direct calls): ${fmt(r.baseline_ms_per_node)} per node`,
  `  validate + plan:                          ${fmt(r.compile_ms_per_node)} per node`,
  `  execute, cold cache:                      ${fmt(r.cold_ms_per_node)} per node (${(r.cold_ms_per_node / r.baseline_ms_per_node).toFixed(1)}x baseline); overhead ${fmt(r.cold_overhead_ms_per_node)}  [aim < 500 µs]`,
  `  execute, fully cached:                    ${fmt(r.cached_ms_per_node)} per node (${(r.cached_ms_per_node / r.cold_ms_per_node).toFixed(3)}x cold)  [aim < 50 µs]`,
];
process.stdout.write(`${lines.join('\n')}\n`);

process.stdout.write(`\nSUPIR sampling on the tiny pack (CPU, ${8} steps, churn + restoration guidance):\n`);
await measureSupirStep((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nAttention memory (fused MultiHeadAttention vs MatMul + Softmax vs ONNX Attention-23):\n');
await measureAttention((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nSUPIR memory estimate for the real model (nodes/supir/lib/memory-estimate.ts):\n');
measureMemory((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nSUPIR checkpoint conversion:\n');
await measureConvert((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nReal-ESRGAN second-order degradation:\n');
await measureDegrade((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nx4 upscaling (tiled: 2x2 tiles overlapping by 16 px):\n');
await measureUpscale((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nRestoration quality of the shipped models (MAXIM, ESRGAN) and plain filters on the shared test photos:\n');
await measureRestoreQuality((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nLarge photos in bounded memory (peak RSS of a real server process; bench/memory-restore.ts says what runs for real):\n');
await measureMemoryRestore((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nScale-out queue (BullMQ + Redis, real redis-server and worker processes) against the embedded queue:\n');
await measureQueue((line) => process.stdout.write(`${line}\n`));

// The full-size step writes 7.7 + 15.5 GB of weights and needs ~17 GB of RAM for fp32: only on request.
if (process.env.SUPIR_BENCH_FULL === '1') {
  process.stdout.write('\nFull-size SUPIR denoiser_step on the CPU (random weights in the official layout, two CFG steps, batch 2):\n');
  await measureFullSize(
    { precisions: ['fp16', 'fp32'], variants: ['app'], latent: 32, batch: 2, steps: 2, tiny: false, keep: false, rssLimitBytes: 19e9, seed: 2024 },
    (line) => process.stdout.write(`${line}\n`),
  );
} else {
  process.stdout.write('\nFull-size SUPIR denoiser_step on the CPU: skipped (~25 GB of disk, ~17 GB of RAM, ~10 min); SUPIR_BENCH_FULL=1 npm run bench, or npm run bench:full\n');
}
