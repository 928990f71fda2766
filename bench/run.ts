/** `npm run bench`: prints each benchmark's figures, as ratios against a baseline of the same run. */
import { measureConvert } from './convert.ts';
import { measureDegrade } from './degrade.ts';
import { measureExecutorOverhead } from './executor-overhead.ts';
import { measureSupirStep } from './supir-step.ts';
import { measureUpscale } from './upscale.ts';

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

process.stdout.write('\nSUPIR checkpoint conversion:\n');
await measureConvert((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nReal-ESRGAN second-order degradation:\n');
await measureDegrade((line) => process.stdout.write(`${line}\n`));

process.stdout.write('\nx4 upscaling (tiled: 2x2 tiles overlapping by 16 px):\n');
await measureUpscale((line) => process.stdout.write(`${line}\n`));
