import type { Page } from 'playwright-core';

/** One node of a test workflow: `inputs` maps an input to [source node, source slot, type]. */
export interface NodeSpec {
  id: number;
  type: string;
  title?: string;
  widgets?: Record<string, string | number | boolean>;
  inputs?: Array<[name: string, from: number, slot: number, type: string]>;
  outputs?: Array<[name: string, type: string]>;
  pos: [number, number];
  size?: [number, number];
}

/** A workflow document (as the editor saves one) from node specs, links numbered in order. */
export function buildWorkflow(name: string, specs: NodeSpec[], ds: { scale: number; offset: [number, number] } = { scale: 0.8, offset: [0, 0] }): Record<string, unknown> {
  const links: Array<[number, number, number, number, number, string]> = [];
  const nodes = specs.map((s) => ({
    id: s.id,
    type: s.type,
    title: s.title ?? s.type,
    pos: s.pos,
    size: s.size ?? [260, 200],
    mode: 0,
    inputs: [] as Array<{ name: string; type: string; link: number | null }>,
    outputs: (s.outputs ?? []).map(([name, type]) => ({ name, type, links: [] as number[] })),
    widgets_values: s.widgets ?? {},
  }));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  specs.forEach((s, i) => {
    (s.inputs ?? []).forEach(([name, from, slot, type], k) => {
      const id = links.length + 1;
      links.push([id, from, slot, s.id, k, type]);
      nodes[i]!.inputs.push({ name, type, link: id });
      byId.get(from)!.outputs[slot]!.links.push(id);
    });
  });
  return {
    format: 'supir-studio/workflow',
    version: 1,
    name,
    last_node_id: Math.max(...specs.map((s) => s.id)),
    last_link_id: links.length,
    nodes,
    links,
    groups: [],
    extra: { ds },
  };
}

/** Runs `body` in the page with the test hook as `s` and `arg`. */
export const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

/** Clicks Queue and waits until the prompt it queued is done; returns its id. */
export async function queueAndWait(page: Page, timeout = 30_000): Promise<string> {
  const previous = await hook<string | null>(page, 'return s.lastPromptId;');
  await page.getByTestId('queue-button').click();
  await page.waitForFunction(
    (prev) => {
      const s = (globalThis as unknown as { __studio: { lastPromptId: string | null; events: Array<{ type: string; prompt_id?: string }> } }).__studio;
      return s.lastPromptId !== prev && s.events.some((e) => e.type === 'prompt_done' && e.prompt_id === s.lastPromptId);
    },
    previous,
    { timeout },
  );
  return (await hook<string>(page, 'return s.lastPromptId;'))!;
}

export interface RunStateView {
  status: string;
  progress: number | null;
  images: string[];
  labels?: string[];
  error: string | null;
  compare?: { a: string; b: string; labelA: string; labelB: string } | null;
  branches?: { settled: number; total: number } | null;
}

export const runState = (page: Page, id: string): Promise<RunStateView> => hook(page, 'return s.graph.runState(arg);', id);
