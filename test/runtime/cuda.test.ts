/**
 * The CUDA diagnosis, tested without the hardware: diagnoseCuda is a pure function of probe
 * results, so every verdict (driver, CUDA 12 runtime, cuDNN 9, provider library, download, ready)
 * is checked with the probe results injected; probeCuda's file checks run against temp folders;
 * checkCuda and the setup tool run with their probe, session attempt and installer injected.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CUDA_LIBRARIES, diagnoseCuda, probeCuda, type CudaDiagnosis, type CudaProbe } from '../../server/runtime/cuda.ts';
import { loaderDirs } from '../../server/runtime/libraries.ts';
import { checkCuda } from '../../server/runtime/providers.ts';
import { formatDiagnosis, main, setupCuda } from '../../tools/setup-cuda.ts';
import { tempDir } from './models.ts';

const root = tempDir();
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const PROVIDER = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const RUNTIME12 = ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'];
const ALL = [...PROVIDER, 'libcuda.so.1', ...RUNTIME12, 'libcudnn.so.9'];

/** Probe results where every library is found in /usr/lib except `missing`. */
function probe(missing: string[] = [], extra: Partial<CudaProbe> = {}): CudaProbe {
  return {
    libraries: CUDA_LIBRARIES.map(({ name, part }) => ({ name, part, path: missing.includes(name) ? null : `/usr/lib/${name}` })),
    ...extra,
  };
}

describe('diagnoseCuda: the verdict from injected probe results', () => {
  it('lists the libraries in the order a session needs them', () => {
    expect(CUDA_LIBRARIES.map((l) => l.name)).toEqual(ALL);
    // Whatever order the probe gives them in; a library the probe does not list counts as missing.
    const shuffled = { libraries: probe().libraries.reverse().filter((l) => l.name !== 'libcufft.so.11') };
    const d = diagnoseCuda(shuffled);
    expect(d.libraries.map((l) => l.name)).toEqual(ALL);
    expect(d).toMatchObject({ ready: false, missing: 'cuda-runtime', reason: 'the CUDA 12 runtime not found (libcufft.so.11)' });
  });

  it('driver missing', () => {
    const d = diagnoseCuda(probe(['libcuda.so.1']));
    expect(d).toMatchObject({ ready: false, missing: 'driver', reason: 'the NVIDIA driver not found (libcuda.so.1)' });
    expect(d.advice).toMatch(/NVIDIA driver.*nvidia-smi/);
    // The driver is named before the runtime and cuDNN that are missing too.
    expect(diagnoseCuda(probe(['libcuda.so.1', 'libcudart.so.12', 'libcudnn.so.9'])).missing).toBe('driver');
  });

  it('CUDA 12 runtime missing: names every missing runtime library, and a CUDA 13 found instead', () => {
    let d = diagnoseCuda(probe(['libcublas.so.12', 'libcublasLt.so.12', 'libcudnn.so.9']));
    expect(d).toMatchObject({ missing: 'cuda-runtime', reason: 'the CUDA 12 runtime not found (libcublas.so.12, libcublasLt.so.12)' });
    expect(d.advice).toMatch(/CUDA 12 runtime/);
    d = diagnoseCuda(probe(RUNTIME12, { otherVersions: ['libcudart.so.13', 'libcudnn.so.9'] }));
    expect(d.reason).toBe(`the CUDA 12 runtime not found (${RUNTIME12.join(', ')}); found libcudart.so.13, but onnxruntime-node 1.30 needs CUDA 12`);
    // libcudart.so.12 itself present (cuBLAS missing) is no "other version".
    d = diagnoseCuda(probe(['libcublas.so.12'], { otherVersions: ['libcudart.so.12'] }));
    expect(d.reason).toBe('the CUDA 12 runtime not found (libcublas.so.12)');
  });

  it('cuDNN 9 missing: off the loader path, or another major version', () => {
    expect(diagnoseCuda(probe(['libcudnn.so.9']))).toMatchObject({ missing: 'cudnn', reason: 'cuDNN 9 not found (libcudnn.so.9)' });
    const off = probe(['libcudnn.so.9']);
    off.libraries.find((l) => l.name === 'libcudnn.so.9')!.elsewhere = '/usr/local/cuda/lib64/libcudnn.so.9';
    expect(diagnoseCuda(off).reason).toBe('cuDNN 9 not found (libcudnn.so.9, present at /usr/local/cuda/lib64/libcudnn.so.9 but not on the loader path)');
    expect(diagnoseCuda(probe(['libcudnn.so.9'], { otherVersions: ['libcudnn.so.8', 'libcudart.so.13'] })).reason).toBe(
      'cuDNN 9 not found (libcudnn.so.9); found libcudnn.so.8, but onnxruntime-node 1.30 needs cuDNN 9',
    );
  });

  it('provider library missing: named first, whatever else is missing', () => {
    for (const missing of [['libonnxruntime_providers_cuda.so'], ALL]) {
      const d = diagnoseCuda(probe(missing));
      expect(d).toMatchObject({ ready: false, missing: 'provider', reason: 'provider library not installed — run npm run setup:cuda' });
      expect(d.advice).toMatch(/npm run setup:cuda/);
    }
  });

  it('download failed: told apart from a missing library, an offline machine in particular', () => {
    const offline = diagnoseCuda(probe(PROVIDER, { downloadError: 'node:internal...\n\nError: getaddrinfo ENOTFOUND api.nuget.org\n    at GetAddrInfoReqWrap' }));
    expect(offline).toMatchObject({ missing: 'download', reason: 'provider library not installed — the download failed (no internet? Error: getaddrinfo ENOTFOUND api.nuget.org)' });
    expect(offline.advice).toMatch(/internet/);
    const other = diagnoseCuda(probe(PROVIDER, { downloadError: 'Error: Failed to find runtimes/linux-x64/native/libonnxruntime_providers_cuda.so in NuGet package' }));
    expect(other.reason).toBe('provider library not installed — the download failed (Error: Failed to find runtimes/linux-x64/native/libonnxruntime_providers_cuda.so in NuGet package)');
    // With the provider library already there, a failed download is not what stands in the way.
    expect(diagnoseCuda(probe(['libcudnn.so.9'], { downloadError: 'Error: getaddrinfo ENOTFOUND' })).missing).toBe('cudnn');
  });

  it('all present: ready only once a session started', () => {
    const device = 'NVIDIA H100 80GB HBM3, driver 550.54.15';
    expect(diagnoseCuda(probe([], { device, session: { ok: true } }))).toEqual({
      ready: true,
      reason: device,
      advice: '',
      libraries: probe().libraries,
      device,
    });
    expect(diagnoseCuda(probe([], { session: { ok: true } }))).toMatchObject({ ready: true, reason: 'CUDA session started' });
    const untried = diagnoseCuda(probe());
    expect(untried).toMatchObject({ ready: false, reason: 'CUDA libraries found; no session tried yet' });
    expect(untried.missing).toBeUndefined();
    const failed = diagnoseCuda(probe([], { session: { ok: false, error: 'CUDA failure 100: no CUDA-capable device is detected\nmore' } }));
    expect(failed).toMatchObject({ ready: false, missing: 'device', reason: 'a CUDA session did not start: CUDA failure 100: no CUDA-capable device is detected' });
    // A session that ran outranks the file checks: the loader may find libraries where we do not look.
    expect(diagnoseCuda(probe(['libcudnn.so.9'], { session: { ok: true } })).ready).toBe(true);
  });
});

describe('probeCuda: the file checks', () => {
  /** A folder holding empty files named like libraries: the checks look for files, not contents. */
  function folderWith(name: string, files: string[]): string {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(dir, f), '');
    return dir;
  }

  it('finds the provider beside the binding and the rest on the loader path, and notes other versions and off-path copies', () => {
    const bindingDir = folderWith('binding', PROVIDER);
    const lib = folderWith('lib', ['libcuda.so.1', 'libcudart.so.13', 'libcudnn.so.8']);
    const cudnnDir = folderWith('cudnn', ['libcudnn.so.9']);
    let p = probeCuda({ bindingDir, search: { dirs: [lib, path.join(root, 'absent')], hints: [cudnnDir] } });
    expect(p.libraries.map((l) => [l.name, l.path])).toEqual(
      ALL.map((n) => [n, PROVIDER.includes(n) ? path.join(bindingDir, n) : n === 'libcuda.so.1' ? path.join(lib, n) : null]),
    );
    expect(p.libraries.find((l) => l.name === 'libcudnn.so.9')!.elsewhere).toBe(path.join(cudnnDir, 'libcudnn.so.9'));
    expect(p.otherVersions!.sort()).toEqual(['libcudart.so.13', 'libcudnn.so.8']);
    expect(diagnoseCuda(p).missing).toBe('cuda-runtime');

    folderWith('lib', [...RUNTIME12, 'libcudnn.so.9']);
    p = probeCuda({ bindingDir, search: { dirs: [lib], hints: [] } });
    expect(p.libraries.every((l) => l.path !== null)).toBe(true);
    expect(probeCuda({ bindingDir: null, search: { dirs: [lib], hints: [] } }).libraries.filter((l) => !l.path).map((l) => l.name)).toEqual(PROVIDER);
  });

  it("searches LD_LIBRARY_PATH first, then ld.so.conf's folders", () => {
    const dirs = loaderDirs({ LD_LIBRARY_PATH: '/opt/a:/opt/b' });
    expect(dirs.slice(0, 2)).toEqual(['/opt/a', '/opt/b']);
    expect(dirs).toContain('/usr/lib');
  });
});

describe('checkCuda: a session attempt only when the provider library is there', () => {
  it('does not try a session without the provider library', async () => {
    let tries = 0;
    const d = await checkCuda(1, { probe: probe(['libonnxruntime_providers_shared.so']), tryCuda: async () => (tries++, null) });
    expect(tries).toBe(0);
    expect(d.missing).toBe('provider');
  });

  it('is ready when the session starts, and names the session error when it does not', async () => {
    let tries = 0;
    expect(await checkCuda(1, { probe: probe(), tryCuda: async () => (tries++, null) })).toMatchObject({ ready: true });
    expect(tries).toBe(1);
    expect(await checkCuda(1, { probe: probe(), tryCuda: async () => 'CUDA failure 35: CUDA driver version is insufficient' })).toMatchObject({
      ready: false,
      missing: 'device',
      reason: 'a CUDA session did not start: CUDA failure 35: CUDA driver version is insufficient',
    });
    // Files missing and the session failing: the missing file is what the user must fix.
    const d = await checkCuda(1, { probe: probe(['libcudnn.so.9']), tryCuda: async () => 'Failed to load shared library' });
    expect(d).toMatchObject({ missing: 'cudnn', reason: 'cuDNN 9 not found (libcudnn.so.9)' });
  });
});

describe('npm run setup:cuda', () => {
  const ready: CudaDiagnosis = diagnoseCuda(probe([], { session: { ok: true }, device: 'Test GPU' }));

  function deps(opts: { install?: string | null; probe?: CudaProbe; check?: CudaDiagnosis }) {
    const calls: string[] = [];
    let out = '';
    return {
      calls,
      output: () => out,
      write: (t: string) => void (out += t),
      install: async () => (calls.push('install'), opts.install ?? null),
      probe: () => (calls.push('probe'), opts.probe ?? probe(PROVIDER)),
      check: async () => (calls.push('check'), opts.check ?? ready),
    };
  }

  it('a failed download with no provider library ends in the download verdict, without a session attempt', async () => {
    const d = deps({ install: 'Error: getaddrinfo EAI_AGAIN api.nuget.org', probe: probe(PROVIDER) });
    const result = await setupCuda({ download: true, ...d });
    expect(result).toMatchObject({ missing: 'download', reason: 'provider library not installed — the download failed (no internet? Error: getaddrinfo EAI_AGAIN api.nuget.org)' });
    expect(d.calls).toEqual(['install', 'probe']);
  });

  it('a failed download over an installed provider goes on to the check', async () => {
    const d = deps({ install: 'npm WARN x\nError: checksum mismatch', probe: probe([]) });
    expect(await setupCuda({ download: true, ...d })).toBe(ready);
    expect(d.calls).toEqual(['install', 'probe', 'check']);
    expect(d.output()).toMatch(/The installer failed \(Error: checksum mismatch\); checking what is there\./);
  });

  it('downloads then checks; --check only checks', async () => {
    const d = deps({});
    expect(await setupCuda({ download: true, ...d })).toBe(ready);
    expect(d.calls).toEqual(['install', 'check']);
    const c = deps({});
    expect(await main(['--check'], c)).toBe(0);
    expect(c.calls).toEqual(['check']);
    expect(c.output().split('\n')[0]).toBe('CUDA ready: Test GPU');
  });

  it('exits 1 and prints what is missing with a checklist when CUDA is not ready', async () => {
    const d = deps({ check: diagnoseCuda(probe(['libcudnn.so.9'])) });
    expect(await main([], d)).toBe(1);
    const text = d.output();
    expect(text).toMatch(/^Installing the CUDA provider/);
    const report = text.slice(text.indexOf('CUDA not ready'));
    expect(report.split('\n').slice(0, 2)).toEqual(['CUDA not ready: cuDNN 9 not found (libcudnn.so.9)', 'Install cuDNN 9 for CUDA 12 and put it on the loader path (ldconfig or LD_LIBRARY_PATH).']);
    expect(report).toMatch(/ok +libonnxruntime_providers_cuda\.so +\/usr\/lib\/libonnxruntime_providers_cuda\.so/);
    expect(report).toMatch(/MISSING libcudnn\.so\.9 +missing/);
  });

  it('formats an off-path library with where it is', () => {
    const p = probe(['libcudnn.so.9']);
    p.libraries.find((l) => l.name === 'libcudnn.so.9')!.elsewhere = '/opt/cudnn/libcudnn.so.9';
    expect(formatDiagnosis(diagnoseCuda(p))).toMatch(/MISSING libcudnn\.so\.9 +not on the loader path \(found at \/opt\/cudnn\/libcudnn\.so\.9\)/);
  });

  it('the command runs: its exit code agrees with its verdict line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/setup-cuda.ts', '--check'], { encoding: 'utf8', timeout: 60_000 });
    const first = r.stdout.split('\n')[0]!;
    expect(first).toMatch(/^CUDA (ready|not ready): \S/);
    expect(r.status).toBe(first.startsWith('CUDA ready') ? 0 : 1);
    expect(r.stdout).toMatch(new RegExp(`Libraries:\\n(  (ok {5}|MISSING) \\S+ +\\S.*\\n){${CUDA_LIBRARIES.length}}$`));
  }, 90_000);
});
