import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readPngTextChunks } from '../../nodes/image/png-text.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/supir-studio.js');
const PHOTO = path.join(ROOT, 'assets/inputs/astronaut.png');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('supir-studio run', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-cli-'));
  const out = path.join(data, 'results');

  it('runs a shipped workflow headless and prints the JSON summary', async () => {
    const { code, stdout } = await cli([
      'run', 'workflows/resize-basic.json', '--input', PHOTO, '--set', 'Resize.scale=0.5', '--out', out, '--data', data, '--json',
    ]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(Object.keys(summary).sort()).toEqual(['cached', 'executed', 'outputs', 'status', 'timings_ms']);
    expect(summary.executed).toEqual(['1', '2', '3']);
    expect(summary.cached).toEqual([]);
    const [file] = summary.outputs['3'];
    expect(path.dirname(file)).toBe(out);
    expect(await sharp(file).metadata()).toMatchObject({ width: 256, height: 256, format: 'png' });
    const chunks = readPngTextChunks(fs.readFileSync(file));
    const embedded = JSON.parse(chunks.workflow!);
    expect(embedded.nodes.find((n: { id: number }) => n.id === 2).widgets_values.scale).toBe(0.5);
    expect(JSON.parse(chunks.prompt!)['1'].inputs.image).toBe('cli/astronaut.png');
    expect(Object.keys(summary.timings_ms).sort()).toEqual(['1', '2', '3']);
  });

  it('says what is wrong with a bad override or workflow, with exit code 2', async () => {
    const bad = await cli(['run', 'workflows/resize-basic.json', '--set', 'Resize.scale=99', '--data', data]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/node 2 \(ImageResize\) input 'scale'.*99 is out of range/);
    const missing = await cli(['run', 'workflows/resize-basic.json', '--set', 'Nobody.scale=1', '--data', data]);
    expect(missing.stderr).toMatch(/no node with id, title or type 'Nobody'/);
  });

  it('reports a failing node in the JSON and exits 1', async () => {
    const corrupt = path.join(data, 'corrupt.png');
    fs.writeFileSync(corrupt, 'not an image at all');
    const { code, stdout } = await cli(['run', 'workflows/resize-basic.json', '--input', corrupt, '--data', data, '--json']);
    expect(code).toBe(1);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('error');
    expect(summary.error).toMatchObject({ node_id: '1', node_type: 'LoadImage', code: 'BAD_IMAGE' });
    expect(summary.error.message).toMatch(/^Load Image \(#1\)/);
  });
});

describe('supir-studio convert', () => {
  it('compiles the tiny SUPIR checkpoints into a pack with one command', async () => {
    const { writeTinyCheckpoints } = await import('../../server/models/pack/tiny.ts');
    const { readPack } = await import('../../nodes/supir/lib/pack-manifest.ts');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-cli-convert-'));
    const files = await writeTinyCheckpoints(path.resolve(ROOT, '../shared/golden'), dir);
    const out = path.join(dir, 'pack');
    const missing = await cli(['convert', '--supir', files.supir, '--out', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/convert needs --supir, --sdxl and --out/);
    const { code, stdout, stderr } = await cli(['convert', '--supir', files.supir, '--sdxl', files.sdxl, '--out', out, '--num-head-channels', '16', '--precision', 'fp16']);
    // --num-head-channels is the yaml value the weights do not carry (16 in the tiny model, 64 in
    // SDXL); the text encoders' heads default to width/64, right for the real ones.
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/model pack written to .* \(6 components, fp16\)/);
    expect(stderr).toMatch(/\[1\/6\] denoiser_step/);
    const manifest = readPack(out, { verify: true });
    expect(Object.keys(manifest.components)).toHaveLength(6);
    // The precision is recorded; the VAE stays float32 in an fp16 pack.
    expect(manifest.precision).toBe('fp16');
    expect(Object.fromEntries(Object.entries(manifest.components).map(([name, c]) => [name, c.dtype]))).toEqual({
      denoiser_step: 'float16',
      vae_encoder: 'float32',
      vae_denoise_encoder: 'float32',
      vae_decoder: 'float32',
      clip_l: 'float16',
      clip_bigg: 'float16',
    });
  });

  it('--precision takes fp32 or fp16, --fp16 is its alias, and the two must agree', async () => {
    const { precisionArg } = await import('../../server/cli/convert.ts');
    expect(precisionArg({})).toBe('fp32');
    expect(precisionArg({ fp16: true })).toBe('fp16');
    expect(precisionArg({ precision: 'fp16' })).toBe('fp16');
    expect(precisionArg({ precision: 'fp32' })).toBe('fp32');
    expect(precisionArg({ precision: 'fp16', fp16: true })).toBe('fp16');
    expect(() => precisionArg({ precision: 'fp32', fp16: true })).toThrow(/--fp16 is --precision fp16; it contradicts --precision fp32/);
    // Refused before any checkpoint is read: the files need not exist.
    const bad = await cli(['convert', '--supir', 'a.ckpt', '--sdxl', 'b.safetensors', '--out', 'nowhere', '--precision', 'fp8']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--precision must be fp32 or fp16, got 'fp8'/);
  });
});
