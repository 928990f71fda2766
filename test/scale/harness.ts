/**
 * Real parts for the scale-out tests: a `redis-server` on 127.0.0.1 and a free port in a temp
 * folder (no persistence unless asked), and `supir-studio serve --queue` / `supir-studio worker`
 * as child processes of the real CLI, with the test node pack (test/server/fault-nodes.ts) on both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'bin', 'supir-studio.js');
export const TEST_NODES = path.join(ROOT, 'test', 'server', 'fault-nodes.ts');
export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface Proc {
  proc: ChildProcess;
  /** The first line the process printed on stdout (its address or identity). */
  first: string;
  output(): string;
  /** Sends the signal and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a process and resolves with its first stdout line matching `ready` (bounded by `timeoutMs`). */
export function startProcess(command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Proc> {
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SUPIR_LOG: 'warn', ...env } });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let all = '';
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${path.basename(command)} ${args.join(' ')} was not ready in ${timeoutMs} ms:\n${all}`));
    }, timeoutMs);
    let buffered = '';
    let done = false;
    proc.stderr!.on('data', (chunk: Buffer) => (all += chunk.toString()));
    proc.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      all += text;
      if (done) return;
      buffered += text;
      for (const line of buffered.split('\n')) {
        if (!ready.test(line)) continue;
        done = true;
        clearTimeout(timer);
        resolve({ proc, first: line, output: () => all, kill });
        return;
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!done) reject(new Error(`${path.basename(command)} exited (${code ?? signal}) before it was ready:\n${all}`));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  proc: Proc;
  /** Stops it (SIGKILL by default: as if the machine died) and removes its folder unless `keep`. */
  stop(opts?: { keep?: boolean; signal?: NodeJS.Signals }): Promise<void>;
}

/** A redis-server of its own; `persist` turns on the append-only file (in its temp folder). */
export async function startRedis(opts: { port?: number; dir?: string; persist?: boolean } = {}): Promise<TestRedis> {
  if (!fs.existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server (npm test's pretest installs it)`);
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'supir-redis-'));
  const persistence = opts.persist ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''] : ['--appendonly', 'no', '--save', ''];
  const proc = await startProcess(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--protected-mode', 'yes', ...persistence], /Ready to accept connections/);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    proc,
    async stop({ keep = false, signal = 'SIGKILL' } = {}) {
      await proc.kill(signal);
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestStudio extends Proc {
  url: string;
}

/** `supir-studio serve --queue` on `port` (0: any) with the test nodes. */
export async function startStudio(redisUrl: string, dataRoot: string, port = 0): Promise<TestStudio> {
  const p = await startProcess(process.execPath, [CLI, 'serve', '--port', String(port), '--data', dataRoot, '--queue', redisUrl, '--nodes', TEST_NODES], /running at http/);
  const url = /running at (http:\/\/\S+)/.exec(p.first)![1]!;
  return { ...p, url };
}

/** `supir-studio worker` named `name`; a killed one's prompts go to others after `lockMs`. */
export function startWorkerProcess(redisUrl: string, dataRoot: string, name: string, lockMs = 5000): Promise<Proc> {
  // Its scratch folder beside the data folder, so that a killed worker's goes with the test's.
  const tmp = path.join(path.dirname(dataRoot), 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  return startProcess(process.execPath, [CLI, 'worker', '--queue', redisUrl, '--data', dataRoot, '--name', name, '--lock-ms', String(lockMs), '--nodes', TEST_NODES], /"worker"/, { TMPDIR: tmp });
}

/** A cheap prompt: a small grey image (shade `value`), a slow pass-through with progress, Save Image. */
export function cheapPrompt(value: number, steps = 8, ms = 25, prefix = 'scale/p'): Record<string, unknown> {
  return {
    '1': { class_type: 'TestSolid', inputs: { size: 16, value } },
    '2': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps, ms } },
    '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: prefix, format: 'png', quality: 95 } },
  };
}

/** Every file under `dir`, as relative paths, hidden ones included (a leftover temp file would show). */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}
