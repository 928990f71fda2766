/**
 * Finding shared libraries the way the dynamic loader would, without loading them: the loader's
 * search path is LD_LIBRARY_PATH, the folders listed in /etc/ld.so.conf (and its includes) and the
 * system folders. Used to say which part of the CUDA stack is missing when a CUDA session fails
 * (onnxruntime only says "Failed to load shared library").
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The folder that holds onnxruntime-node's native binding (and where provider libraries go). */
export function ortBindingDir(): string | null {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}

/** Folders the dynamic loader searches, in order. */
export function loaderDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  dirs.push(...ldConfDirs('/etc/ld.so.conf', new Set()));
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  dirs.push(`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib');
  return [...new Set(dirs)];
}

/** Folders where CUDA libraries are often installed without being on the loader's path. */
export function hintDirs(): string[] {
  const dirs: string[] = [];
  for (const base of listDir('/usr/local').filter((d) => d.startsWith('cuda')).map((d) => path.join('/usr/local', d))) {
    dirs.push(path.join(base, 'lib64'), path.join(base, 'targets', `${process.arch === 'arm64' ? 'sbsa' : 'x86_64'}-linux`, 'lib'));
  }
  dirs.push('/usr/local/nvidia/lib64', '/usr/local/nvidia/lib');
  return dirs;
}

/** The first loader folder holding `name`, or null. */
export function findLibrary(name: string, dirs = loaderDirs()): string | null {
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return null;
}

function ldConfDirs(file: string, seen: Set<string>): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const include = /^include\s+(.+)$/.exec(line);
    if (include) {
      for (const pattern of include[1]!.split(/\s+/)) {
        for (const f of expandGlob(path.resolve(path.dirname(file), pattern))) dirs.push(...ldConfDirs(f, seen));
      }
    } else if (line.startsWith('/')) {
      dirs.push(line);
    }
  }
  return dirs;
}

/** Enough of glob for ld.so.conf: a `*` in the last path segment. */
function expandGlob(pattern: string): string[] {
  const dir = path.dirname(pattern);
  const base = path.basename(pattern);
  if (!base.includes('*')) return [pattern];
  const re = new RegExp(`^${base.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return listDir(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
