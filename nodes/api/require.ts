import type { ModelLibrary } from './models.ts';
import type { NodeEnv } from './env.ts';
import type { Runtime } from './runtime.ts';
import { StudioError } from './errors.ts';

/** The runtime, or a clear error where this process was started without one. */
export function requireRuntime(env: NodeEnv): Runtime {
  if (!env.runtime) throw new StudioError('INTERNAL', 'this process has no inference runtime (start it through the server or the CLI)');
  return env.runtime;
}

export function requireModels(env: NodeEnv): ModelLibrary {
  if (!env.models) throw new StudioError('INTERNAL', 'this process has no model library (start it through the server or the CLI)');
  return env.models;
}
