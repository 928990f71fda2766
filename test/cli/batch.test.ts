import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/supir-studio.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `killWhen` sees stderr as it grows and may SIGKILL the process (a crash, a power cut). */
function cli(args: string[], killWhen?: (stderr: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (killWhen?.(stderr) && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The images of `dir` the way a person sees them: complete files only (hidden temporary files aside). */
function pngs(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.png') && !f.startsWith('.')).sort() : [];
}

describe('supir-studio run --input-dir', () => {
  it('runs a folder of 50 scans, is killed midway, and run again writes every output exactly once', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-cli-batch-'));
    const scans = path.join(tmp, 'my scans');
    const out = path.join(tmp, 'restored');
    const data = path.join(tmp, 'data');
    fs.mkdirSync(scans);
    for (let i = 1; i <= 50; i++) {
      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i * 5, g: 255 - i * 5, b: 60 } } }).png().toBuffer();
      fs.writeFileSync(path.join(scans, `scan_${i}.png`), png);
    }
    // Each 16x16 scan becomes 1024x1024, so that the run takes long enough to be cut.
    const args = ['run', 'workflows/resize-basic.json', '--input-dir', scans, '--out', out, '--data', data, '--set', 'Resize.mode=size', '--set', 'Resize.width=1024', '--set', 'Resize.height=1024'];

    const killed = await cli(args, (stderr) => /\b([5-9]|\d\d)\/50 images/.test(stderr));
    expect(killed.signal).toBe('SIGKILL');
    const first = pngs(out);
    expect(first.length).toBeGreaterThanOrEqual(5);
    expect(first.length).toBeLessThan(50);
    // Non-terminal stderr: one bar line per image, with the time left.
    expect(killed.stderr).toMatch(/\[#+-+\] 2\/50 images · 4% · .* left/);

    const resumed = await cli(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`\\] ${first.length}/50 images · \\d+% · ${first.length} already done`));
    expect(resumed.stderr).toMatch(/\[#{24}\] 50\/50 images · 100%/);
    // The final table: a row per image, then the totals.
    const lines = resumed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^#\s+image\s+status\s+time\s+output$/);
    expect(lines).toHaveLength(52);
    expect(lines.at(-1)).toMatch(new RegExp(`^50 images: ${50 - first.length} done, ${first.length} already done, 0 failed in \\d+`));
    expect(lines.filter((l) => /already done/.test(l) && !/^50 images/.test(l))).toHaveLength(first.length);
    expect(lines[7]).toMatch(new RegExp(`^7\\s+scan_7\\.png\\s+(done|already done)\\s+.*${path.join(out, 'resized_scan_7.png').replace(/[.]/g, '\\.')}$`));

    // Every source has exactly one output, named after it, complete.
    const all = pngs(out);
    expect(all).toEqual(Array.from({ length: 50 }, (_, k) => `resized_scan_${k + 1}.png`).sort());
    for (const f of all) expect(await sharp(path.join(out, f)).metadata()).toMatchObject({ width: 1024, height: 1024, format: 'png' });
    for (const f of first) expect(fs.statSync(path.join(out, f)).mtimeMs).toBeLessThan(fs.statSync(path.join(out, all.find((a) => !first.includes(a))!)).mtimeMs);
    // Nothing was written into the user's folder.
    expect(fs.readdirSync(scans)).toHaveLength(50);

    // A third run has nothing to do.
    const json = await cli([...args, '--json']);
    const summary = JSON.parse(json.stdout);
    expect(summary.status).toBe('success');
    expect(summary.executed).toEqual([]);
    expect(summary.batch).toMatchObject({ total: 50, done: 0, resumed: 50, failed: 0 });
    expect(summary.batch.items[0]).toEqual({ position: 1, source: 'scan_1.png', status: 'resumed', outputs: [path.join(out, 'resized_scan_1.png')] });
  }, 120_000);

  it('reports a bad image by name, saves the others, and says what is wrong with a folder', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-cli-batch-'));
    const scans = path.join(tmp, 'scans');
    fs.mkdirSync(scans);
    for (const name of ['a.png', 'b.png', 'c.png']) fs.writeFileSync(path.join(scans, name), await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } }).png().toBuffer());
    fs.writeFileSync(path.join(scans, 'b.png'), 'truncated');
    const args = ['run', 'workflows/resize-basic.json', '--input-dir', scans, '--out', path.join(tmp, 'out'), '--data', path.join(tmp, 'data')];
    const bad = await cli(args);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: Load Image \[b\.png\] \(#1:1\) input 'folder': "b\.png" is not a readable image/);
    expect(bad.stdout).toMatch(/^2\s+b\.png\s+failed\s+.*is not a readable image/m);
    expect(bad.stdout).toMatch(/3 images: 2 done, 0 already done, 1 failed/);
    expect(pngs(path.join(tmp, 'out'))).toEqual(['resized_a.png', 'resized_c.png']);

    const none = await cli([...args, '--pattern', '*.tif']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/node 1 \(LoadImageFolder\) input 'pattern': Load Image: pattern: no image in the inputs folder matches "\*\.tif"/);
    const missing = await cli(['run', 'workflows/resize-basic.json', '--input-dir', path.join(tmp, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--input-dir .*nope is not a folder/);
  }, 60_000);
});
