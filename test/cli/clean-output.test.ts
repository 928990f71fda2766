/**
 * No output a person cannot act on: a CLI run prints only its own lines (what runs, progress,
 * what was written), nothing from the graphics stack that the WebGPU probe wakes up ("Warning:
 * Couldn't load Vulkan", "XDG_RUNTIME_DIR is invalid or not set"); the editor's build prints no
 * warning about litegraph's `eval`, while other warnings still get through.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { isLitegraphEval } from '../../editor/vite.config.ts';
import { progressThrottle } from '../../server/cli/run.ts';
import type { EngineEvent } from '../../server/engine/index.ts';
import { shortWebGpuReason, tryWebGpuInChild } from '../../server/runtime/providers.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/supir-studio.js');

/** Lines the CLI itself writes to stderr during a run (server/cli/run.ts describeEvent). */
const OWN_LINE = /^(running .+ \(#\w+\)|done .+ \(#\w+\) in [\d.]+ ms(: .+)?|cached: .+|  .+ \(#\w+\) [\d.]+\/\d+ \(\d+%( · .+ left)?\)|warning: .+|interrupted|error: .+)$/;

describe('clean output', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-clean-'));
  afterAll(() => fs.rmSync(data, { recursive: true, force: true }));

  it('a CLI run of the default workflow prints only its own lines on stderr', async () => {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'run', 'workflows/restore-esrgan.json', '--data', path.join(data, 'd'), '--out', path.join(data, 'out')], {
      cwd: ROOT,
      // Whatever this machine's graphics stack is, it must not get a say: no runtime dir at all.
      env: { ...process.env, XDG_RUNTIME_DIR: '' },
    });
    expect(stdout.trim()).toBe(path.join(data, 'out', 'restored_00001_.png'));
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines.join('\n')).not.toMatch(/vulkan|XDG_RUNTIME_DIR|dawn|libvulkan|mesa/i);
    expect(lines.filter((l) => !OWN_LINE.test(l))).toEqual([]);
    expect(lines).toContain('running Upscale x4 (#3)');
    // Progress says how far and, once a pace is known, how long is left; at most one line a second.
    expect(lines.filter((l) => l.startsWith('  Upscale x4 (#3) ')).at(-1)).toMatch(/ (\d+)\/\1 \(100%\)$/);
  }, 120_000);

  it('the WebGPU probe answers in words and keeps what it prints to itself', async () => {
    const reason = await tryWebGpuInChild();
    // Either WebGPU works here (null) or there is a reason, shortened to one line for /api/system.
    if (reason !== null) expect(shortWebGpuReason(reason)).toMatch(/^[^\n]+$/);
  }, 90_000);

  it('progress lines: at most one a second per node, and always the last', () => {
    let t = 0;
    const seen: EngineEvent[] = [];
    const emit = progressThrottle((e) => seen.push(e), 1000, () => t);
    const progress = (value: number): EngineEvent => ({ type: 'progress', prompt_id: 'p', node_id: '3', value, max: 10 });
    for (let v = 1; v <= 10; v++) {
      emit(progress(v));
      t += 300;
    }
    emit({ type: 'node_done', prompt_id: 'p', node_id: '3', cached: false, ms: 3000, files: [] });
    expect(seen.map((e) => (e.type === 'progress' ? e.value : e.type))).toEqual([1, 5, 9, 10, 'node_done']);
  });

  it("the editor's build prints no warning about litegraph's eval, and drops only that one", async () => {
    const outDir = path.join(data, 'dist');
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'editor', '--logLevel', 'warn', '--outDir', outDir], { cwd: ROOT });
    expect(fs.existsSync(path.join(outDir, 'index.html'))).toBe(true);
    expect(`${stdout}${stderr}`).not.toMatch(/\[EVAL\]|eval/i);
    const at = (id: string) => ({ code: 'EVAL', message: 'Use of direct `eval`', id });
    expect(isLitegraphEval(at(path.join(ROOT, 'node_modules/@comfyorg/litegraph/dist/litegraph.es.js')))).toBe(true);
    expect(isLitegraphEval(at(path.join(ROOT, 'editor/src/graph/node-classes.ts')))).toBe(false);
    expect(isLitegraphEval(at(path.join(ROOT, 'node_modules/other/litegraph.js')))).toBe(false);
    expect(isLitegraphEval({ code: 'CIRCULAR_DEPENDENCY', message: 'x', id: path.join(ROOT, 'node_modules/@comfyorg/litegraph/dist/litegraph.es.js') })).toBe(false);
  }, 120_000);
});
