import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnoseCuda, ortBindingDir } from '../../server/runtime/index.ts';
import { loaderDirs } from '../../server/runtime/libraries.ts';
import { formatDiagnosis } from '../../tools/setup-cuda.ts';
import { tempDir } from './models.ts';

const root = tempDir();
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const binding = ortBindingDir();
const providerInstalled = binding !== null && fs.existsSync(path.join(binding, 'libonnxruntime_providers_cuda.so'));

/** A folder holding empty files named like libraries: the checks look for files, not contents. */
function folderWith(name: string, files: string[]): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(dir, f), '');
  return dir;
}

const PROVIDER = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const RUNTIME12 = ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'];

describe('CUDA diagnosis', () => {
  it('on this machine names the missing provider library first', () => {
    const d = diagnoseCuda();
    expect(d.ready).toBe(false);
    if (!providerInstalled) {
      expect(d.missing).toBe('provider');
      expect(d.reason).toBe('provider library not installed — run npm run setup:cuda');
      expect(d.advice).toMatch(/npm run setup:cuda/);
    }
    expect(d.libraries.map((l) => l.name)).toEqual([...PROVIDER, 'libcuda.so.1', ...RUNTIME12, 'libcudnn.so.9']);
  });

  it('walks driver, CUDA 12 runtime and cuDNN 9 in order as the pieces appear', () => {
    const bindingDir = folderWith('binding', PROVIDER);
    const lib = path.join(root, 'lib');
    const search = { dirs: [lib], hints: [] };
    folderWith('lib', []);
    let d = diagnoseCuda({ bindingDir, search });
    expect(d).toMatchObject({ ready: false, missing: 'driver', reason: 'the NVIDIA driver not found (libcuda.so.1)' });

    folderWith('lib', ['libcuda.so.1', 'libcudart.so.13']);
    d = diagnoseCuda({ bindingDir, search });
    expect(d.missing).toBe('cuda-runtime');
    expect(d.reason).toBe(
      `the CUDA 12 runtime not found (${RUNTIME12.join(', ')}); found libcudart.so.13, but onnxruntime-node 1.30 needs CUDA 12`,
    );
    expect(d.libraries.find((l) => l.name === 'libcuda.so.1')?.path).toBe(path.join(lib, 'libcuda.so.1'));

    folderWith('lib', RUNTIME12);
    d = diagnoseCuda({ bindingDir, search });
    expect(d).toMatchObject({ missing: 'cudnn', reason: 'cuDNN 9 not found (libcudnn.so.9)' });

    // Installed but off the loader's path: say where it is.
    const cudnnDir = folderWith('cudnn', ['libcudnn.so.9']);
    d = diagnoseCuda({ bindingDir, search: { dirs: [lib], hints: [cudnnDir] } });
    expect(d.reason).toBe(`cuDNN 9 not found (libcudnn.so.9, present at ${path.join(cudnnDir, 'libcudnn.so.9')} but not on the loader path)`);

    folderWith('lib', ['libcudnn.so.9']);
    d = diagnoseCuda({ bindingDir, search });
    expect(d).toMatchObject({ ready: false, reason: 'CUDA libraries found; no session tried yet' });
    expect(d.missing).toBeUndefined();
    d = diagnoseCuda({ bindingDir, search, session: { ok: false, error: 'CUDA failure 100: no CUDA-capable device is detected\nmore' } });
    expect(d).toMatchObject({ missing: 'device', reason: 'a CUDA session did not start: CUDA failure 100: no CUDA-capable device is detected' });
    expect(diagnoseCuda({ bindingDir, search, session: { ok: true } }).ready).toBe(true);
  });

  it('tells a failed download apart, and an offline machine in particular', () => {
    const none = { bindingDir: folderWith('empty-binding', []), search: { dirs: [], hints: [] } };
    const offline = diagnoseCuda({ ...none, downloadError: 'node:internal...\n\nError: getaddrinfo ENOTFOUND api.nuget.org\n    at GetAddrInfoReqWrap' });
    expect(offline).toMatchObject({ missing: 'download', reason: 'provider library not installed — the download failed (no internet? Error: getaddrinfo ENOTFOUND api.nuget.org)' });
    const other = diagnoseCuda({ ...none, downloadError: 'Error: Failed to find runtimes/linux-x64/native/libonnxruntime_providers_cuda.so in NuGet package' });
    expect(other.reason).toBe('provider library not installed — the download failed (Error: Failed to find runtimes/linux-x64/native/libonnxruntime_providers_cuda.so in NuGet package)');
  });

  it("searches LD_LIBRARY_PATH first, then ld.so.conf's folders", () => {
    const dirs = loaderDirs({ LD_LIBRARY_PATH: '/opt/a:/opt/b' });
    expect(dirs.slice(0, 2)).toEqual(['/opt/a', '/opt/b']);
    expect(dirs).toContain('/usr/lib');
  });

  it('prints a checklist in the setup tool', () => {
    const text = formatDiagnosis(diagnoseCuda({ bindingDir: folderWith('binding2', PROVIDER), search: { dirs: [], hints: [] } }));
    expect(text.split('\n')[0]).toBe('CUDA not ready: the NVIDIA driver not found (libcuda.so.1)');
    expect(text).toMatch(/ok +libonnxruntime_providers_cuda\.so +\//);
    expect(text).toMatch(/MISSING libcudnn\.so\.9 +missing/);
  });

  it('`setup:cuda --check` reports on this machine and exits 1 when CUDA is not ready', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/setup-cuda.ts', '--check'], { encoding: 'utf8', timeout: 20_000 });
    if (!providerInstalled) {
      expect(r.status).toBe(1);
      expect(r.stdout.split('\n')[0]).toBe('CUDA not ready: provider library not installed — run npm run setup:cuda');
    } else {
      expect(r.stdout).toMatch(/^CUDA (ready|not ready): /);
    }
  });
});
