/**
 * The scale-out queue (server/scale) against the embedded one, in the same run on this machine:
 * - overhead: tiny prompts (a 16 px image saved) through the server with the embedded queue and
 *   through BullMQ + Redis with one worker process: ms per prompt, and Redis commands per prompt;
 * - throughput: prompts with real work (a 256 px image resized x4 with lanczos, saved) with one
 *   and with two worker processes, as prompts per second and their ratio.
 * The server runs in this process; workers are `supir-studio worker` processes; Redis is a
 * redis-server of its own on a free port (no persistence).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { catalogue } from '../nodes/index.ts';
import { startServer, type StudioServer } from '../server/app.ts';
import { NodeRegistry, type ApiPrompt } from '../server/engine/index.ts';
import { currentLogLevel, setLogLevel } from '../server/log.ts';
import { faultNodes } from '../test/server/fault-nodes.ts';
import { startRedis, startWorkerProcess, type Proc } from '../test/scale/harness.ts';

export interface QueueBenchReport {
  tiny: { prompts: number; embedded_ms: number; redis_ms: number; overhead_ms: number; commands: number; scripts: number };
  work: { prompts: number; one_worker_per_s: number; two_workers_per_s: number; ratio: number };
}

const tiny = (i: number): ApiPrompt => ({
  '1': { class_type: 'TestSolid', inputs: { size: 16, value: i } },
  '2': { class_type: 'SaveImage', inputs: { image: ['1', 0], filename_prefix: 'bench/tiny', format: 'png', quality: 95 } },
});
const work = (i: number): ApiPrompt => ({
  '1': { class_type: 'TestSolid', inputs: { size: 256, value: i } },
  '2': { class_type: 'ImageResize', inputs: { image: ['1', 0], mode: 'scale', scale: 4, width: 1024, height: 1024, method: 'lanczos' } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: 'bench/work', format: 'png', quality: 95 } },
});

/** Submits `count` prompts at once and returns the wall time until the last one is recorded, in ms. */
async function drain(server: StudioServer, count: number, make: (i: number) => ApiPrompt, offset: number): Promise<number> {
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: make(offset + i) }) });
    if (!res.ok) throw new Error(`POST /api/prompt: ${res.status} ${await res.text()}`);
    ids.push(((await res.json()) as { prompt_id: string }).prompt_id);
  }
  const entries = await Promise.all(ids.map((id) => server.queue.whenDone(id)));
  const failed = entries.find((e) => e.status !== 'success');
  if (failed) throw new Error(`a bench prompt failed: ${failed.error?.message ?? failed.status}`);
  return performance.now() - t0;
}

async function redisStats(url: string): Promise<{ commands: number; scripts: number }> {
  const r = new Redis(url);
  try {
    const stats = await r.info('stats');
    const commandstats = await r.info('commandstats');
    const scripts = [...commandstats.matchAll(/^cmdstat_(?:evalsha|eval|fcall):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    return { commands: Number(/total_commands_processed:(\d+)/.exec(stats)![1]), scripts };
  } finally {
    r.disconnect();
  }
}

export async function measureQueue(say: (line: string) => void, opts: { tiny?: number; work?: number } = {}): Promise<QueueBenchReport> {
  const nTiny = opts.tiny ?? 200;
  const nWork = opts.work ?? 24;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-queue-'));
  const registry = new NodeRegistry([...catalogue, ...faultNodes]);
  const redis = await startRedis();
  const level = currentLogLevel();
  // The servers' start and stop lines would interleave with the figures.
  if (level === 'info' || level === 'debug') setLogLevel('warn');
  const procs: Proc[] = [];
  const servers: StudioServer[] = [];
  try {
    const base = { port: 0, persist: false, cacheBytes: 64 * 1024 * 1024 };
    // Embedded: the same prompts through the same HTTP API, run in the server's process.
    const embedded = await startServer({ ...base, dataRoot: path.join(root, 'embedded') }, registry);
    servers.push(embedded);
    await drain(embedded, 20, tiny, 0); // warm-up
    const embeddedMs = (await drain(embedded, nTiny, tiny, 1000)) / nTiny;
    await embedded.close();

    const data = path.join(root, 'redis');
    const server = await startServer({ ...base, dataRoot: data, queue: redis.url }, registry);
    servers.push(server);
    procs.push(await startWorkerProcess(redis.url, data, 'bench-1', 30_000));
    await drain(server, 20, tiny, 0); // warm-up (also the worker's first compile of each node)
    const before = await redisStats(redis.url);
    const redisMs = (await drain(server, nTiny, tiny, 2000)) / nTiny;
    const after = await redisStats(redis.url);
    const report: QueueBenchReport = {
      tiny: {
        prompts: nTiny,
        embedded_ms: embeddedMs,
        redis_ms: redisMs,
        overhead_ms: redisMs - embeddedMs,
        // Two INFO calls of this bench are in the difference; negligible against hundreds.
        commands: (after.commands - before.commands) / nTiny,
        scripts: (after.scripts - before.scripts) / nTiny,
      },
      work: { prompts: nWork, one_worker_per_s: 0, two_workers_per_s: 0, ratio: 0 },
    };
    say(`  tiny prompts (16 px image saved), ${nTiny} queued at once through the HTTP API:`);
    say(`    embedded queue (baseline):        ${embeddedMs.toFixed(2)} ms per prompt`);
    say(`    BullMQ + Redis, 1 worker process: ${redisMs.toFixed(2)} ms per prompt (${(redisMs / embeddedMs).toFixed(1)}x; +${report.tiny.overhead_ms.toFixed(2)} ms)`);
    say(`    Redis per prompt: ${report.tiny.commands.toFixed(0)} commands (those inside BullMQ's Lua scripts included), of them ${report.tiny.scripts.toFixed(1)} script calls`);

    // Alternated (1, 2, 1, 2 workers) and the best round of each kept: other load on the machine
    // then hurts both alike rather than whichever ran second.
    await drain(server, 2, work, 0); // warm-up of the work workload
    let one = 0;
    let two = 0;
    for (let round = 0; round < 2; round++) {
      const offset = 10_000 * (round + 1);
      one = Math.max(one, nWork / ((await drain(server, nWork, work, offset)) / 1000));
      const second = await startWorkerProcess(redis.url, data, `bench-2-${round}`, 30_000);
      procs.push(second);
      await drain(server, 4, work, offset + 1000); // the second worker's warm-up
      two = Math.max(two, nWork / ((await drain(server, nWork, work, offset + 2000)) / 1000));
      await second.kill('SIGTERM');
    }
    report.work = { prompts: nWork, one_worker_per_s: one, two_workers_per_s: two, ratio: two / one };
    say(`  prompts with work (256 px image resized x4 with lanczos, 1024 px PNG saved), ${nWork} at once, best of 2 alternated rounds, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}:`);
    say(`    1 worker:  ${one.toFixed(2)} prompts/s (baseline)`);
    say(`    2 workers: ${two.toFixed(2)} prompts/s (${report.work.ratio.toFixed(2)}x)`);
    return report;
  } finally {
    for (const p of procs) await p.kill('SIGTERM');
    for (const s of servers) await s.close();
    await redis.stop();
    setLogLevel(undefined);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write('Scale-out queue (BullMQ + Redis) against the embedded queue:\n');
  await measureQueue((line) => process.stdout.write(`${line}\n`));
}
