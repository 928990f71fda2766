import type { DataDirs } from '../../nodes/api/data-dirs.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { NodeRegistry, OutputCache, PromptQueueApi } from '../engine/index.ts';
import type { ServerConfig } from '../config.ts';

/** What every router needs, built once by `startServer` and handed down (no module globals). */
export interface ServerContext {
  config: ServerConfig;
  dirs: DataDirs;
  env: NodeEnv;
  registry: NodeRegistry;
  queue: PromptQueueApi;
  cache: OutputCache;
}
