import {
  compilePrompt,
  executeGraph,
  LruOutputCache,
  NodeRegistry,
  type ApiPrompt,
  type EngineEvent,
  type OutputCache,
  type PromptResult,
} from '../../server/engine/index.ts';
import { tempEnv } from './fake-context.ts';
import { testNodes } from './test-nodes.ts';


/** Runs prompts against one cache, recording every event: the executor without any transport. */
export class Harness {
  readonly registry: NodeRegistry;
  readonly env = tempEnv().env;
  events: EngineEvent[] = [];
  private n = 0;

  constructor(
    readonly cache: OutputCache = new LruOutputCache(1 << 30),
    nodes = testNodes,
  ) {
    this.registry = new NodeRegistry(nodes);
  }

  async run(prompt: ApiPrompt, signal = new AbortController().signal): Promise<PromptResult> {
    const compiled = compilePrompt(prompt, this.registry, this.env);
    if (!compiled.ok) throw new Error(`invalid: ${JSON.stringify(compiled.errors)}`);
    this.events = [];
    return executeGraph({
      promptId: `p${++this.n}`,
      graph: compiled.graph,
      env: this.env,
      cache: this.cache,
      sink: { emit: (e) => this.events.push(e) },
      signal,
    });
  }
}

/** const → add → add → output, the chain most tests use. */
export function chain(b1 = 1, b2 = 10, start = 5): ApiPrompt {
  return {
    '1': { class_type: 'TestConst', inputs: { value: start } },
    '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: b1 } },
    '3': { class_type: 'TestAdd', inputs: { a: ['2', 0], b: b2 } },
    '4': { class_type: 'TestOutput', inputs: { value: ['3', 0] } },
  };
}
