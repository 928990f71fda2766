import { api, type SystemInfo } from '../api/client.ts';

/** GET /api/system: the execution providers onnxruntime can use here, memory and cache use. */
export class SystemState {
  info = $state.raw<SystemInfo | null>(null);
  error = $state.raw<string | null>(null);

  /** The best provider available, as people name it ("CUDA", "CPU"...). */
  get device(): string {
    const available = this.info?.onnxruntime.available ?? [];
    for (const name of ['tensorrt', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu']) {
      if (available.includes(name)) return PROVIDER_LABELS[name] ?? name.toUpperCase();
    }
    return available[0]?.toUpperCase() ?? '—';
  }

  async refresh(): Promise<void> {
    try {
      this.info = await api.system();
      this.error = null;
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
  }
}

export const PROVIDER_LABELS: Record<string, string> = {
  cpu: 'CPU',
  cuda: 'CUDA',
  tensorrt: 'TensorRT',
  dml: 'DirectML',
  coreml: 'CoreML',
  webgpu: 'WebGPU',
};

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 10 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}
