import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { catalogue } from '../../nodes/index.ts';
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import { NodeRegistry } from '../engine/index.ts';

/**
 * The catalogue plus the nodes of `--nodes MODULE` files: every exported array of node
 * definitions (objects with an `id` and an `execute`). The server and its workers must be given
 * the same modules, or a worker refuses the prompts that use them.
 */
export async function registryWith(modules: string[]): Promise<NodeRegistry> {
  const extra: AnyNodeDefinition[] = [];
  for (const file of modules) {
    const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
    const found = Object.values(mod).filter(Array.isArray).flat().filter(isNodeDefinition);
    if (found.length === 0) throw new StudioError('BAD_INPUT', `--nodes ${file} exports no array of node definitions`);
    extra.push(...found);
  }
  const unique = new Map<string, AnyNodeDefinition>();
  for (const def of [...catalogue, ...extra]) if (!unique.has(def.id)) unique.set(def.id, def);
  return new NodeRegistry([...unique.values()]);
}

function isNodeDefinition(value: unknown): value is AnyNodeDefinition {
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' && typeof (value as { execute?: unknown }).execute === 'function';
}
