/**
 * Conversion of the tiny SUPIR model (golden weights) into a pack: wall time and peak resident
 * memory, sampled while it runs, against the bytes of the weights converted; then the same
 * arithmetic projected to the real model.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertToPack } from '../server/models/pack/convert.ts';
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
  const realParams = REAL_PARAMS.unet + REAL_PARAMS.control + REAL_PARAMS.projects;
  const realFp32 = realParams * 4;
  log(`  real denoiser_step: ${(realParams / 1e9).toFixed(2)} B parameters = ${(realFp32 / 1e9).toFixed(1)} GB in fp32.`);
  log(`    today: one float32 copy of the weights in memory while the graph is written (external data, tensor by tensor): about ${(realFp32 / 1e9).toFixed(1)} GB peak`);
  log(`    (--fp16 adds the half-size copy: about ${((realFp32 * 1.5) / 1e9).toFixed(1)} GB); reading weights lazily during the write would bring it to the largest tensor (~52 MB) plus the graph.`);
  fs.rmSync(tmp, { recursive: true, force: true });
}
