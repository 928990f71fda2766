/**
 * Why CUDA can or cannot run here, in words a user can act on. Written once and used by both the
 * runtime's provider probe (providers.ts) and `npm run setup:cuda` (tools/setup-cuda.ts).
 * probeCuda() looks at this machine; diagnoseCuda() is a pure function of what it found (plus a
 * session attempt or a failed download), so every verdict can be tested without the hardware.
 *
 * onnxruntime-node 1.30 on linux-x64 needs, besides its npm files: the CUDA provider libraries
 * beside its binding (downloaded from NuGet by its installer with ONNXRUNTIME_NODE_INSTALL=cuda12),
 * the NVIDIA driver (libcuda.so.1), the CUDA 12 runtime libraries and cuDNN 9.
 */
import fs from 'node:fs';
import path from 'node:path';
import { findLibrary, hintDirs, loaderDirs, ortBindingDir } from './libraries.ts';

export type CudaPart = 'provider' | 'driver' | 'cuda-runtime' | 'cudnn';

export interface LibraryCheck {
  name: string;
  part: CudaPart;
  /** Where the loader would find it, or null. */
  path: string | null;
  /** Where it is outside the loader's search path, when it is somewhere. */
  elsewhere?: string;
}

export interface CudaDiagnosis {
  /** A CUDA session started (only checkCuda, which tries one, can say so). */
  ready: boolean;
  /** What is missing first, when something is. */
  missing?: CudaPart | 'download' | 'device';
  /** Short, for a provider report: "provider library not installed — run npm run setup:cuda". */
  reason: string;
  /** What to do, one sentence or two, for the setup tool and logs. */
  advice: string;
  libraries: LibraryCheck[];
  /** GPU model and driver version when the driver exposes them. */
  device?: string;
}

/**
 * What the checks found: the input of diagnoseCuda. probeCuda() fills it from this machine;
 * tests (and callers that already know) build it directly.
 */
export interface CudaProbe {
  /** The libraries of CUDA_LIBRARIES: where the loader finds each (path), else where it lies off the loader path (elsewhere). */
  libraries: LibraryCheck[];
  /** Other major versions of the CUDA runtime and cuDNN on the loader path (`libcudart.so.13`), to name a mix-up. */
  otherVersions?: string[];
  /** The GPU model and driver version, when the driver exposes them. */
  device?: string;
  /** How a CUDA session attempt went, when one was made. */
  session?: { ok: true } | { ok: false; error: string };
  /** Why the provider download failed, when one was tried and failed. */
  downloadError?: string;
}

export const PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/** What a CUDA session needs, in the order the diagnosis names them. */
export const CUDA_LIBRARIES: ReadonlyArray<{ name: string; part: CudaPart }> = [
  ...PROVIDER_LIBRARIES.map((name) => ({ name, part: 'provider' as const })),
  { name: 'libcuda.so.1', part: 'driver' },
  ...['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'].map((name) => ({ name, part: 'cuda-runtime' as const })),
  { name: 'libcudnn.so.9', part: 'cudnn' },
];

const WHAT: Record<CudaPart, string> = {
  provider: "onnxruntime-node's CUDA provider library",
  driver: 'the NVIDIA driver',
  'cuda-runtime': 'the CUDA 12 runtime',
  cudnn: 'cuDNN 9',
};

const ADVICE: Record<CudaPart | 'download' | 'device', string> = {
  provider: 'Run `npm run setup:cuda` (downloads it from NuGet; needs internet).',
  driver: 'Install the NVIDIA driver for your GPU (nvidia-smi should list it).',
  'cuda-runtime': 'Install the CUDA 12 runtime (cudart, cuBLAS, cuFFT, cuRAND 12.x) and put its lib folder on the loader path (ldconfig or LD_LIBRARY_PATH).',
  cudnn: 'Install cuDNN 9 for CUDA 12 and put it on the loader path (ldconfig or LD_LIBRARY_PATH).',
  download: 'Connect to the internet (or set GLOBAL_AGENT_HTTPS_PROXY) and run `npm run setup:cuda` again.',
  device: 'Check that the GPU is visible (nvidia-smi) and that the driver supports CUDA 12.',
};

/**
 * Words the first thing missing, from probe results alone (no file system, no process state).
 * Order: a session that started proves everything (the loader may find libraries where we do not
 * look); then a failed download (when the provider library is what is missing), the provider
 * library, the driver, the CUDA 12 runtime, cuDNN 9 (the order the loader needs them), and last a
 * session that did not start although every file is there. A library that `probe.libraries`
 * does not list counts as missing.
 */
export function diagnoseCuda(probe: CudaProbe): CudaDiagnosis {
  const libraries = CUDA_LIBRARIES.map(({ name, part }): LibraryCheck => {
    const seen = probe.libraries.find((l) => l.name === name);
    const found = seen?.path ?? null;
    return { name, part, path: found, ...(seen?.elsewhere && !found ? { elsewhere: seen.elsewhere } : {}) };
  });
  const { device } = probe;
  const base = { libraries, ...(device ? { device } : {}) };
  if (probe.session?.ok) return { ready: true, reason: device ?? 'CUDA session started', advice: '', ...base };
  const gone = libraries.filter((l) => !l.path);
  const first = gone[0];
  if (probe.downloadError && first?.part === 'provider') {
    const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|ECONNRESET|getaddrinfo|socket hang up/i.test(probe.downloadError);
    const why = errorLine(probe.downloadError);
    const reason = `provider library not installed — the download failed (${offline ? `no internet? ${why}` : why})`;
    return { ready: false, missing: 'download', reason, advice: ADVICE.download, ...base };
  }
  if (first) {
    const names = gone.filter((l) => l.part === first.part);
    const reason =
      first.part === 'provider'
        ? 'provider library not installed — run npm run setup:cuda'
        : `${WHAT[first.part]} not found (${names.map(describeMissing).join(', ')})${otherVersions(first.part, probe.otherVersions ?? [])}`;
    return { ready: false, missing: first.part, reason, advice: ADVICE[first.part], ...base };
  }
  if (probe.session) {
    return { ready: false, missing: 'device', reason: `a CUDA session did not start: ${firstLine(probe.session.error)}`, advice: ADVICE.device, ...base };
  }
  // Nothing missing, but only a session proves it works (checkCuda in providers.ts starts one).
  return { ready: false, reason: 'CUDA libraries found; no session tried yet', advice: 'Run `npm run setup:cuda` to try one.', ...base };
}

/**
 * The file checks of this machine, or of `bindingDir` and `search` (the loader's folders and the
 * usual install folders off its path) when given: the provider libraries beside onnxruntime's
 * binding, the others on the loader path, each missing one also looked for in the hint folders.
 */
export function probeCuda(opts: { bindingDir?: string | null; search?: { dirs: string[]; hints: string[] } } = {}): CudaProbe {
  const binding = opts.bindingDir === undefined ? ortBindingDir() : opts.bindingDir;
  const { dirs, hints } = opts.search ?? { dirs: loaderDirs(), hints: hintDirs() };
  const libraries = CUDA_LIBRARIES.map(({ name, part }): LibraryCheck => {
    const found = part === 'provider' ? (binding && fs.existsSync(path.join(binding, name)) ? path.join(binding, name) : null) : findLibrary(name, dirs);
    const elsewhere = found || part === 'provider' ? null : findLibrary(name, hints);
    return { name, part, path: found, ...(elsewhere ? { elsewhere } : {}) };
  });
  const device = deviceInfo();
  return { libraries, otherVersions: versionsOnPath(dirs), ...(device ? { device } : {}) };
}

function describeMissing(l: LibraryCheck): string {
  return l.elsewhere ? `${l.name}, present at ${l.elsewhere} but not on the loader path` : l.name;
}

/** A CUDA 13 runtime where 12 is needed is a common mix-up: name it. */
function otherVersions(part: CudaPart, found: string[]): string {
  if (part !== 'cuda-runtime' && part !== 'cudnn') return '';
  const stem = part === 'cudnn' ? 'libcudnn.so.' : 'libcudart.so.';
  const wanted = part === 'cudnn' ? 'libcudnn.so.9' : 'libcudart.so.12';
  const others = [...new Set(found.filter((f) => f.startsWith(stem) && f !== wanted && /^\d+$/.test(f.slice(stem.length))))];
  return others.length > 0 ? `; found ${others.join(', ')}, but onnxruntime-node 1.30 needs ${part === 'cudnn' ? 'cuDNN 9' : 'CUDA 12'}` : '';
}

/** Every `libcudart.so.N` and `libcudnn.so.N` in the loader's folders. */
function versionsOnPath(dirs: string[]): string[] {
  const found = new Set<string>();
  for (const dir of dirs) {
    try {
      for (const f of fs.readdirSync(dir)) if (/^lib(cudart|cudnn)\.so\.\d+$/.test(f)) found.add(f);
    } catch {
      // A folder on the path that does not exist is normal.
    }
  }
  return [...found];
}

/** GPU model and driver version from the driver's /proc files (no nvidia-smi needed). */
export function deviceInfo(): string | undefined {
  try {
    const version = /Kernel Module\s+([\d.]+)/.exec(fs.readFileSync('/proc/driver/nvidia/version', 'utf8'))?.[1];
    const gpus = fs.readdirSync('/proc/driver/nvidia/gpus').map((id) => {
      const info = fs.readFileSync(path.join('/proc/driver/nvidia/gpus', id, 'information'), 'utf8');
      return /Model:\s*(.+)/.exec(info)?.[1]?.trim() ?? id;
    });
    return `${gpus.join(', ') || 'no GPU listed'}${version ? `, driver ${version}` : ''}`;
  } catch {
    return undefined;
  }
}

/** The `Error: ...` line of a Node stack dump, or the first line. */
function errorLine(text: string): string {
  return firstLine(/^\s*\w*Error: .*$/m.exec(text)?.[0] ?? text);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]!.slice(0, 300);
}
