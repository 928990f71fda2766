/**
 * Free memory on the GPU, as `nvidia-smi` reports it, so that a run that cannot fit is refused
 * with the numbers before it starts instead of failing inside onnxruntime halfway through.
 */
import { execFile } from 'node:child_process';
import { InputError } from '../../api/errors.ts';

/** Free bytes on CUDA device `device`, or undefined where nvidia-smi is absent or says nothing usable. */
export function cudaFreeBytes(device = 0, timeoutMs = 5000): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=memory.free', '--format=csv,noheader,nounits', `--id=${device}`], { timeout: timeoutMs }, (err, stdout) => {
      const mib = Number(String(stdout).trim().split('\n')[0]);
      resolve(err || !Number.isFinite(mib) || String(stdout).trim() === '' ? undefined : mib * 2 ** 20);
    });
  });
}

/**
 * Refuses a sampling run whose activations (the weights are already on the device) need more than
 * the device has free, naming both numbers and what would make it fit.
 */
export function checkGpuRoom(needed: number, free: number | undefined, what: string): void {
  if (free === undefined || needed <= free) return;
  const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
  throw new InputError(
    'control',
    `sampling ${what} needs about ${gb(needed)} more on the GPU, which has ${gb(free)} free (nvidia-smi): set tile_size (e.g. 64 latent cells) to sample in tiles, use an fp16 pack, or free the GPU`,
    'TOO_LARGE',
  );
}
