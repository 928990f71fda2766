/**
 * `npm run setup:cuda`: installs onnxruntime-node's CUDA provider libraries and checks that a CUDA
 * session starts.
 *
 *   npx tsx tools/setup-cuda.ts [--check]
 *
 * The download is onnxruntime-node's own installer (script/install.js), run with
 * ONNXRUNTIME_NODE_INSTALL=cuda12: it fetches Microsoft.ML.OnnxRuntime.Gpu.Linux from NuGet and
 * puts libonnxruntime_providers_{shared,cuda,tensorrt}.so beside the binding. `npm install` skips
 * it (allowScripts) because it needs internet and is useless without an NVIDIA GPU. --check only
 * checks. Exit code 0 when CUDA is ready, 1 when something is missing. The verdict itself is
 * cuda.ts's diagnoseCuda, a pure function of the checks, tested with every case injected.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkCuda } from '../server/runtime/providers.ts';
import { diagnoseCuda, probeCuda, type CudaDiagnosis, type CudaProbe } from '../server/runtime/cuda.ts';

const require = createRequire(import.meta.url);

/** Runs the installer, echoing its output; resolves with its error output when it fails. */
export function runOrtInstaller(write: (text: string) => void): Promise<string | null> {
  const script = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'script', 'install.js');
  return new Promise((resolve) => {
    // onnxruntime-node 1.30.0's parseInstallFlag() returns undefined for 'cuda12' (a missing
    // return), which makes the installer treat `npm run` in this project as a "local install" and
    // exit 0 without downloading. Without npm's two variables it goes on to install linux-x64's
    // default manifest, which is exactly cuda12, whenever those files are missing.
    const { npm_config_local_prefix: _prefix, npm_package_json: _pkg, ...env } = process.env;
    const child = spawn(process.execPath, [script], {
      env: { ...env, ONNXRUNTIME_NODE_INSTALL: 'cuda12' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => write(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', (err) => resolve(err.message));
    child.on('close', (code) => resolve(code === 0 ? null : errors.trim() || `the installer exited with code ${code}`));
  });
}

/** The report printed at the end: one verdict line, what to do, and the library checklist. */
export function formatDiagnosis(d: CudaDiagnosis): string {
  const lines = d.ready ? [`CUDA ready: ${d.reason}`] : [`CUDA not ready: ${d.reason}`, d.advice];
  if (d.device && !d.ready) lines.push(`GPU: ${d.device}`);
  lines.push('', 'Libraries:');
  for (const l of d.libraries) {
    const where = l.path ?? (l.elsewhere ? `not on the loader path (found at ${l.elsewhere})` : 'missing');
    lines.push(`  ${l.path ? 'ok     ' : 'MISSING'} ${l.name.padEnd(36)} ${where}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What the setup does to the machine; tests replace each part. */
export interface SetupDeps {
  /** Runs the provider download: null when it worked, else its error output. */
  install?: (write: (text: string) => void) => Promise<string | null>;
  /** The file checks (cuda.ts probeCuda). */
  probe?: () => CudaProbe;
  /** The full check with a session attempt (providers.ts checkCuda). */
  check?: () => Promise<CudaDiagnosis>;
}

export async function setupCuda(opts: { download: boolean; write: (text: string) => void } & SetupDeps): Promise<CudaDiagnosis> {
  const { install = runOrtInstaller, probe = () => probeCuda(), check = () => checkCuda() } = opts;
  if (opts.download) {
    opts.write('Installing the CUDA provider for onnxruntime-node (ONNXRUNTIME_NODE_INSTALL=cuda12)...\n');
    const failure = await install(opts.write);
    if (failure !== null) {
      const d = diagnoseCuda({ ...probe(), downloadError: failure });
      // The library may already be there from an earlier run: then the download did not matter.
      if (d.missing === 'download') return d;
      opts.write(`The installer failed (${failure.split('\n').find((l) => l.includes('Error')) ?? 'see above'}); checking what is there.\n`);
    }
  }
  return check();
}

/** The command: runs the setup (or only the check), prints the report, returns the exit code. */
export async function main(argv: string[], deps: SetupDeps & { write: (text: string) => void }): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { check: { type: 'boolean', default: false } } });
  const diagnosis = await setupCuda({ ...deps, download: !values.check });
  deps.write(formatDiagnosis(diagnosis));
  return diagnosis.ready ? 0 : 1;
}

const invoked = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (invoked) process.exitCode = await main(process.argv.slice(2), { write: (t) => process.stdout.write(t) });
