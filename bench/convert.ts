/**
 * Conversion of the tiny SUPIR model (golden weights) into a pack: wall time and peak resident
 * memory, sampled while it runs, against the bytes of the weights converted; then the peak
 * projected to the real model from its tensor shapes (the writer streams weights, so the peak is
 * set by the largest tensor and by what stays inside the protobuf, not by the model's size).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertToPack } from '../server/models/pack/convert.ts';
import { officialKeys, SDXL } from '../server/models/supir/official-layout.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../server/models/pack/tiny.ts';

const GOLDEN = path.resolve(import.meta.dirname, '../../shared/golden');
/** Parameters of the real networks (counted from the official constructors in test/supir). */
const REAL_PARAMS = { unet: 2_567_463_684, control: 1_243_378_880, projects: 54_797_440 };

export async function measureConvert(log: (line: string) => void): Promise<void> {
  if (!fs.existsSync(GOLDEN)) {
    log('  skipped: ../shared/golden is not here');
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-convert-'));
  const files = await writeTinyCheckpoints(GOLDEN, tmp);
  const inputBytes = fs.statSync(files.supir).size + fs.statSync(files.sdxl).size;
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const t0 = performance.now();
  const manifest = await convertToPack({ ...files, out: path.join(tmp, 'pack'), ...TINY_COMPILE_OPTIONS });
  const ms = performance.now() - t0;
  clearInterval(timer);
  const packDir = path.join(tmp, 'pack');
  // Component files plus their external weight files.
  const outBytes = Object.values(manifest.components)
    .flatMap((c) => [c.file, ...c.external])
    .reduce((a, f) => a + fs.statSync(path.join(packDir, f)).size, 0);
  const extra = peak - base;
  log(`  tiny model: ${(inputBytes / 1e6).toFixed(1)} MB of checkpoints -> ${(outBytes / 1e6).toFixed(1)} MB pack in ${(ms / 1000).toFixed(2)} s`);
  log(`  peak memory above start: ${(extra / 1e6).toFixed(0)} MB = ${(extra / inputBytes).toFixed(1)}x the checkpoint bytes`);
  log('    (the tiny tensors are under the 1 MiB threshold and stay inside the protobuf, so this peak is the graph, not streaming)');
  const realParams = REAL_PARAMS.unet + REAL_PARAMS.control + REAL_PARAMS.projects;
  const realFp32 = realParams * 4;
  log(`  real denoiser_step: ${(realParams / 1e9).toFixed(2)} B parameters = ${(realFp32 / 1e9).toFixed(1)} GB in fp32.`);
  // Weights stream to external data one tensor at a time; what the writer holds at once is the
  // largest tensor (its stored bytes as read, float32, and the fp16 copy with --fp16) plus the
  // tensors under the 1 MiB external threshold, which stay inside the protobuf (held, then copied
  // into the encoded model, so twice).
  const shapes = [...officialKeys(SDXL, 'unet'), ...officialKeys(SDXL, 'control')];
  const EXTERNAL = 1024 * 1024;
  let largest = 0;
  let inline32 = 0;
  let inline16 = 0;
  for (const [key, dims] of shapes) {
    const n = dims.reduce((a, d) => a * d, 1);
    largest = Math.max(largest, n);
    if (n * 4 < EXTERNAL) inline32 += n * 4;
    // In an fp16 pack only LayerNorm weights (the transformer blocks' norm1..3) stay float32 (half.ts).
    const stored = /\.norm[123]\./.test(key) ? n * 4 : n * 2;
    if (stored < EXTERNAL) inline16 += stored;
  }
  // SDXL checkpoints store float16: the read buffer is half the float32 one.
  const peak32 = largest * (2 + 4) + 2 * inline32;
  const peak16 = largest * (2 + 4 + 2) + 2 * inline16;
  const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;
  log(`    largest tensor ${mb(largest * 4)} in fp32; tensors under 1 MiB (inside the protobuf): ${mb(inline32)} (${mb(inline16)} with --fp16)`);
  log(`    weights held while writing: about ${mb(peak32)} (--fp16: ${mb(peak16)}) plus the graph's node records, instead of a ${(realFp32 / 1e9).toFixed(1)} GB copy;`);
  log('    every tensor is read twice (hashed for deduplication while compiling, then written)');
  fs.rmSync(tmp, { recursive: true, force: true });
}
