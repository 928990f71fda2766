/**
 * Prepares `.gpu-carry/` for bench/gpu.sh, on the machine that calls a GPU machine which can reach
 * nothing outside and gets the working tree plus named ignored paths, 64 MiB in all:
 *
 *   - node.xz: this machine's Node binary (the GPU machine may have none);
 *   - node_modules.tar.xz: only the packages the CLI, the converter and the benches import (found
 *     by esbuild from the entry points, plus their dependencies), linux-x64 binaries only;
 *   - gl/*.deb: the Vulkan loader, for onnxruntime's WebGPU provider (apt-get download);
 *   - ort-cuda/: onnxruntime-node's CUDA provider libraries, only if `npm run setup:cuda` installed
 *     them here and they fit (they do not: the CUDA provider alone is far over 64 MiB, and it also
 *     needs the CUDA 12 runtime and cuDNN 9 on the GPU machine).
 *
 *   npx tsx bench/gpu-carry.ts [--no-node] [--no-vulkan]
 *
 * Then name `.gpu-carry` in the call's carry list and run `bash bench/gpu.sh` there.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CARRY = path.join(ROOT, '.gpu-carry');
const LIMIT = 64 * 2 ** 20;
const MB = 2 ** 20;

/** Everything the GPU script starts: the CLI, the benches, the worker entries, and tsx itself. */
const ENTRIES = ['bin/supir-studio.js', 'bench/gpu.ts', 'bench/full-size.ts', 'server/runtime/session-worker.ts', 'nodes/degrade/worker.ts'];
const ALWAYS = ['tsx'];
/** Binaries of other platforms, and files nothing runs. */
const EXCLUDE = ['node_modules/onnxruntime-node/bin/napi-v6/linux/arm64', 'node_modules/onnxruntime-node/bin/napi-v6/darwin', 'node_modules/onnxruntime-node/bin/napi-v6/win32', '*.d.ts', '*.map', '*.md'];

function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, input: opts.input, maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.toString().trim()}`);
  return r.stdout;
}

const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

/** The packages the entry points import (statically or by a literal dynamic import), and their dependencies. */
async function packagesNeeded(): Promise<string[]> {
  const result = await build({ entryPoints: ENTRIES.map((e) => path.join(ROOT, e)), bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', packages: 'external', outdir: '/tmp/unused', logLevel: 'silent' });
  const wanted = new Set(ALWAYS);
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imp of input.imports) if (imp.external && !imp.path.startsWith('node:') && !imp.path.startsWith('.') && !path.isAbsolute(imp.path)) wanted.add(packageOf(imp.path));
  }
  const builtins = new Set((await import('node:module')).builtinModules);
  const closure = new Set<string>();
  const visit = (name: string): void => {
    if (closure.has(name) || builtins.has(name)) return;
    const manifest = path.join(ROOT, 'node_modules', name, 'package.json');
    if (!fs.existsSync(manifest)) return; // nested in its parent, or an optional dependency for another platform
    closure.add(name);
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) for (const dep of Object.keys(pkg[field] ?? {})) visit(dep);
  };
  for (const name of wanted) visit(name);
  return [...closure].sort();
}

function size(file: string): number {
  return fs.statSync(file).size;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'no-node': { type: 'boolean', default: false }, 'no-vulkan': { type: 'boolean', default: false } } });
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the GPU machine is linux-x64: prepare the carry on linux-x64 (this is ${process.platform}-${process.arch})`);
  const ignored = spawnSync('git', ['check-ignore', '-q', '.gpu-carry/x'], { cwd: ROOT }).status === 0;
  if (!ignored) {
    fs.appendFileSync(path.join(ROOT, '.git', 'info', 'exclude'), '\n/.gpu-carry/\n');
    console.log('added /.gpu-carry/ to .git/info/exclude (it travels only when named in carry)');
  }
  fs.rmSync(CARRY, { recursive: true, force: true });
  fs.mkdirSync(path.join(CARRY, 'gl'), { recursive: true });

  if (!values['no-node']) {
    fs.writeFileSync(path.join(CARRY, 'node.xz'), run('xz', ['-9e', '-T0', '-c', fs.realpathSync(process.execPath)]));
    console.log(`node.xz: Node ${process.version}, ${(size(path.join(CARRY, 'node.xz')) / MB).toFixed(1)} MiB`);
  }

  const packages = await packagesNeeded();
  const tar = run('tar', ['-cf', '-', ...EXCLUDE.map((e) => `--exclude=${e}`), ...packages.map((p) => `node_modules/${p}`)]);
  fs.writeFileSync(path.join(CARRY, 'node_modules.tar.xz'), run('xz', ['-9e', '-T0', '-c'], { input: tar }));
  fs.writeFileSync(path.join(CARRY, 'packages.txt'), `${packages.join('\n')}\n`);
  console.log(`node_modules.tar.xz: ${packages.length} packages (${(tar.length / MB).toFixed(1)} MiB), ${(size(path.join(CARRY, 'node_modules.tar.xz')) / MB).toFixed(1)} MiB`);

  if (!values['no-vulkan']) {
    try {
      run('apt-get', ['download', 'libvulkan1'], { cwd: path.join(CARRY, 'gl') });
      console.log(`gl/: ${fs.readdirSync(path.join(CARRY, 'gl')).join(', ')}`);
    } catch (err) {
      console.log(`gl/: no Vulkan loader (${(err as Error).message.split('\n')[0]}); WebGPU will need the GPU machine's own libvulkan.so.1`);
    }
  }

  const ortDir = path.join(ROOT, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
  const cudaLibs = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'].filter((f) => fs.existsSync(path.join(ortDir, f)));
  const carried = (dir: string): number => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((s, e) => s + size(path.join(e.parentPath, e.name)), 0);
  const tree = run('git', ['ls-files', '-co', '--exclude-standard', '-z']).toString().split('\0').filter(Boolean).reduce((s, f) => s + (fs.statSync(path.join(ROOT, f), { throwIfNoEntry: false })?.size ?? 0), 0);
  if (cudaLibs.length === 2) {
    const cudaBytes = cudaLibs.reduce((s, f) => s + size(path.join(ortDir, f)), 0);
    if (tree + carried(CARRY) + cudaBytes < LIMIT) {
      fs.mkdirSync(path.join(CARRY, 'ort-cuda'));
      for (const f of cudaLibs) fs.copyFileSync(path.join(ortDir, f), path.join(CARRY, 'ort-cuda', f));
      console.log(`ort-cuda/: the CUDA provider (${(cudaBytes / MB).toFixed(0)} MiB)`);
    } else {
      console.log(`ort-cuda/: NOT carried: the CUDA provider libraries are ${(cudaBytes / MB).toFixed(0)} MiB, over what the call can carry`);
    }
  } else {
    console.log('ort-cuda/: none here (npm run setup:cuda installs them; they are far over 64 MiB anyway, and need the CUDA 12 runtime and cuDNN 9 there)');
  }
  const total = tree + carried(CARRY);
  console.log(`travels: working tree ${(tree / MB).toFixed(1)} MiB + .gpu-carry ${(carried(CARRY) / MB).toFixed(1)} MiB = ${(total / MB).toFixed(1)} MiB of ${LIMIT / MB} MiB${total > LIMIT ? ': TOO LARGE (try --no-node if the GPU machine has Node >= 20.19)' : ''}`);
  if (total > LIMIT) process.exitCode = 1;
}

await main();
