import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import { SOCKET_COLOURS, SOCKET_TYPES } from '../../nodes/api/sockets.ts';
import { comboOptions, widgetLinkType } from '../../nodes/api/widgets.ts';
import type { NodeCatalogueJson } from '../protocol/catalogue.ts';

export type { NodeCatalogueJson };

/** The node types a graph may use, by id. */
export class NodeRegistry {
  private readonly byId = new Map<string, AnyNodeDefinition>();

  constructor(definitions: Iterable<AnyNodeDefinition>) {
    for (const def of definitions) {
      if (this.byId.has(def.id)) throw new Error(`node type ${def.id} is defined twice`);
      this.byId.set(def.id, def);
    }
  }

  get(id: string): AnyNodeDefinition | undefined {
    return this.byId.get(id);
  }

  all(): AnyNodeDefinition[] {
    return [...this.byId.values()];
  }

  /** The JSON the editor builds its node classes from (`GET /api/nodes`). */
  describe(env: NodeEnv): NodeCatalogueJson {
    return {
      socket_types: SOCKET_TYPES.map((name) => ({ name, color: SOCKET_COLOURS[name] })),
      nodes: this.all().map((def) => ({
        id: def.id,
        display_name: def.displayName,
        category: def.category,
        description: def.description,
        output_node: def.output === true,
        nondeterministic: def.nondeterministic === true,
        inputs: Object.entries(def.inputs).map(([name, spec]) => ({
          name,
          type: spec.type,
          optional: spec.optional === true,
          description: spec.description ?? '',
        })),
        widgets: Object.entries(def.widgets).map(([name, spec]) => {
          const { options: _options, ...rest } = spec as typeof spec & { options?: unknown };
          return {
            name,
            ...rest,
            link_type: widgetLinkType(spec),
            ...(spec.kind === 'COMBO' ? { options: comboOptions(spec, env) } : {}),
          };
        }),
        outputs: Object.entries(def.outputs).map(([name, type]) => ({ name, type })),
      })),
    };
  }
}
