import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderStatus } from '../../nodes/api/runtime.ts';
import { resolveConfig } from '../../server/config.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';

describe('runtime wiring', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ provider: 'cpu' });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(server.parent, { recursive: true, force: true });
  });

  it('GET /api/system reports the providers the runtime found, keeping the old fields', async () => {
    const res = await server.api('/api/system');
    expect(res.status).toBe(200);
    const { onnxruntime } = (await res.json()) as {
      onnxruntime: { version: string; backends: Array<{ name: string }>; available: string[]; providers: ProviderStatus[] };
    };
    expect(onnxruntime.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(onnxruntime.backends.map((b) => b.name)).toContain('cpu');
    expect(onnxruntime.providers.map((p) => p.name)).toEqual(['cuda', 'webgpu', 'cpu']);
    for (const p of onnxruntime.providers) expect(p.reason.length).toBeGreaterThan(0);
    expect(onnxruntime.available).toEqual(onnxruntime.providers.filter((p) => p.available).map((p) => p.name));
    expect(onnxruntime.available).toContain('cpu');
  });

  it('reads the provider from SUPIR_PROVIDER and checks it', () => {
    expect(resolveConfig({}, {}).provider).toBe('auto');
    expect(resolveConfig({}, { SUPIR_PROVIDER: ' CUDA ' }).provider).toBe('cuda');
    expect(resolveConfig({ provider: 'cpu' }, { SUPIR_PROVIDER: 'webgpu' }).provider).toBe('cpu');
    expect(() => resolveConfig({}, { SUPIR_PROVIDER: 'tpu' })).toThrow(/SUPIR_PROVIDER must be one of auto, cuda, webgpu, cpu/);
    expect(resolveConfig({}, {}).runtimeMemoryBytes).toBeGreaterThan(0);
  });
});
