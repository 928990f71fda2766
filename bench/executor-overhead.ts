/**
 * Executor overhead per node on a 200-node chain of cheap nodes, cold (empty cache) and fully
 * cached, against a baseline that calls the same nodes' execute() directly in a loop.
 */
import { createDataDirs } from '../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS } from '../nodes/api/env.ts';
import { compilePrompt, executeGraph, LruOutputCache, NodeRegistry, type ApiPrompt, type CompiledGraph } from '../server/engine/index.ts';
import { TestAdd, testNodes } from '../test/support/test-nodes.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const NODES = 200;
const ROUNDS = 40;

function chainPrompt(n: number): ApiPrompt {
  const prompt: ApiPrompt = { '0': { class_type: 'TestConst', inputs: { value: 0 } } };
  for (let i = 1; i < n - 1; i++) prompt[String(i)] = { class_type: 'TestAdd', inputs: { a: [String(i - 1), 0], b: 1 } };
  prompt[String(n - 1)] = { class_type: 'TestOutput', inputs: { value: [String(n - 2), 0] } };
  return prompt;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export interface OverheadReport {
  nodes: number;
  baseline_ms_per_node: number;
  compile_ms_per_node: number;
  cold_ms_per_node: number;
  cached_ms_per_node: number;
  cold_overhead_ms_per_node: number;
}

export async function measureExecutorOverhead(): Promise<OverheadReport> {
  const env = { dirs: createDataDirs(fs.mkdtempSync(path.join(os.tmpdir(), 'supir-bench-'))), limits: DEFAULT_LIMITS };
  const registry = new NodeRegistry(testNodes);
  const prompt = chainPrompt(NODES);
  const sink = { emit: () => undefined };
  const signal = new AbortController().signal;
  const compile = (): CompiledGraph => {
    const r = compilePrompt(prompt, registry, env);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.graph;
  };
  const graph = compile();

  const baseline: number[] = [];
  const compileTimes: number[] = [];
  const cold: number[] = [];
  const cached: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let t = performance.now();
    let value = 0;
    for (let i = 0; i < NODES; i++) value = ((await TestAdd.execute({ a: value, b: 1 } as never, undefined as never)) as { sum: number }).sum;
    baseline.push(performance.now() - t);

    t = performance.now();
    compile();
    compileTimes.push(performance.now() - t);

    const cache = new LruOutputCache(1 << 30);
    t = performance.now();
    const first = await executeGraph({ promptId: 'b', graph, env, cache, sink, signal });
    cold.push(performance.now() - t);
    t = performance.now();
    const second = await executeGraph({ promptId: 'b', graph, env, cache, sink, signal });
    cached.push(performance.now() - t);
    if (first.executed.length !== NODES || second.cached.length !== NODES) throw new Error('chain did not run as expected');
  }
  const per = (xs: number[]): number => median(xs) / NODES;
  return {
    nodes: NODES,
    baseline_ms_per_node: per(baseline),
    compile_ms_per_node: per(compileTimes),
    cold_ms_per_node: per(cold),
    cached_ms_per_node: per(cached),
    cold_overhead_ms_per_node: per(cold) - per(baseline),
  };
}
