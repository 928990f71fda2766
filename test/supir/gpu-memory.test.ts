/**
 * The free-GPU-memory check SUPIR Sample makes on CUDA: nvidia-smi is a real process (a stand-in
 * script on PATH here, since CI has no GPU), its answer parsed, and a run that cannot fit refused
 * with both numbers and the remedy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkGpuRoom, cudaFreeBytes } from '../../nodes/supir/lib/gpu-memory.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-nvidia-smi-'));
const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

function fakeNvidiaSmi(script: string): void {
  const file = path.join(dir, 'nvidia-smi');
  fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  process.env.PATH = `${dir}:${savedPath}`;
}

describe('free GPU memory', () => {
  it('reads nvidia-smi\'s free MiB for the device asked', async () => {
    fakeNvidiaSmi('case "$*" in *--id=1*) echo 2048;; *) echo 10240;; esac');
    expect(await cudaFreeBytes(0)).toBe(10240 * 2 ** 20);
    expect(await cudaFreeBytes(1)).toBe(2048 * 2 ** 20);
  });

  it('is unknown when nvidia-smi is missing, fails or prints nothing usable', async () => {
    process.env.PATH = dir;
    fs.rmSync(path.join(dir, 'nvidia-smi'), { force: true });
    expect(await cudaFreeBytes()).toBeUndefined();
    fakeNvidiaSmi('echo "NVIDIA-SMI has failed" >&2; exit 9');
    expect(await cudaFreeBytes()).toBeUndefined();
    fakeNvidiaSmi('echo "[N/A]"');
    expect(await cudaFreeBytes()).toBeUndefined();
  });

  it('refuses a run that needs more than is free, naming both and the remedy; lets others pass', () => {
    expect(() => checkGpuRoom(3e9, 2e9, 'a 128x128-cell latent')).toThrow(/input 'control': sampling a 128x128-cell latent needs about 3\.0 GB more on the GPU, which has 2\.0 GB free \(nvidia-smi\): set tile_size/);
    expect(() => checkGpuRoom(1e9, 2e9, 'x')).not.toThrow();
    expect(() => checkGpuRoom(1e12, undefined, 'x')).not.toThrow();
  });
});
