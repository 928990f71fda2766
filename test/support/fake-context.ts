import type { AnyNodeDefinition, FileRef, NodeContext } from '../../nodes/api/define.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDataDirs } from '../../nodes/api/data-dirs.ts';
import { DEFAULT_LIMITS, type Limits, type NodeEnv } from '../../nodes/api/env.ts';
import { InterruptedError } from '../../nodes/api/errors.ts';
import { Rng, seedFromString } from '../../nodes/api/rng.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';

/** A NodeContext for calling a node's execute directly, recording what the node reported. */
export interface FakeContext extends NodeContext {
  readonly files: FileRef[];
  readonly previews: ImageTensor[];
  readonly progressCalls: Array<[number, number]>;
  readonly warnings: string[];
  /** Makes the next progress / checkAborted call throw, as an interrupt would. */
  abort(): void;
}

export function fakeContext(env: NodeEnv, overrides: Partial<NodeContext> = {}): FakeContext {
  const controller = new AbortController();
  const files: FileRef[] = [];
  const previews: ImageTensor[] = [];
  const progressCalls: Array<[number, number]> = [];
  const warnings: string[] = [];
  const checkAborted = (): void => {
    if (controller.signal.aborted) throw new InterruptedError();
  };
  const ctx: FakeContext = {
    nodeId: '1',
    promptId: 'test-prompt',
    signal: controller.signal,
    env,
    extra: {},
    files,
    previews,
    progressCalls,
    warnings,
    abort: () => controller.abort(),
    warn(message) {
      warnings.push(message);
    },
    progress(value, max) {
      checkAborted();
      progressCalls.push([value, max]);
    },
    checkAborted,
    preview(image) {
      previews.push(image);
    },
    rng(seed) {
      return new Rng(seed ?? seedFromString(`${this.promptId}:${this.nodeId}`));
    },
    addFile(ref) {
      files.push(ref);
    },
  };
  return Object.assign(ctx, overrides);
}

/** A NodeEnv over a fresh temporary data root; `cleanup` removes it. */
export function tempEnv(limits: Partial<Limits> = {}): { env: NodeEnv; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-nodes-'));
  return {
    env: { dirs: createDataDirs(root), limits: { ...DEFAULT_LIMITS, ...limits } },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** Calls a node's execute with loosely typed arguments, as the executor does after validation. */
export async function runNode(
  node: AnyNodeDefinition,
  args: Record<string, unknown>,
  ctx: NodeContext,
): Promise<Record<string, unknown>> {
  return node.execute(args as Parameters<AnyNodeDefinition['execute']>[0], ctx);
}
