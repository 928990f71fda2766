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

  /**
   * Refreshes every `intervalMs` while `active()` says so (the server is connected and the page
   * visible), so that the memory shown follows the server; returns the function that stops it.
   */
  poll(intervalMs: number, active: () => boolean): () => void {
    const timer = setInterval(() => {
      if (active() && document.visibilityState !== 'hidden') void this.refresh();
    }, intervalMs);
    return () => clearInterval(timer);
  }
}

/** The server's resident memory as the toolbar shows it ("1.4 GiB"), or null before the first answer. */
export function serverMemory(info: SystemInfo | null): string | null {
  return info ? formatBytes(info.memory.rss) : null;
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
