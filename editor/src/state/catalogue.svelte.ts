import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';
import { api } from '../api/client.ts';

export type CatalogueNode = NodeCatalogueJson['nodes'][number];
export interface CatalogueCategory {
  name: string;
  nodes: CatalogueNode[];
}

/** The node catalogue from GET /api/nodes, grouped by category for the library. */
export class CatalogueState {
  data = $state.raw<NodeCatalogueJson | null>(null);
  categories = $derived(group(this.data?.nodes ?? []));

  async load(): Promise<NodeCatalogueJson> {
    const data = await api.nodes();
    this.data = data;
    return data;
  }

  byId(id: string): CatalogueNode | undefined {
    return this.data?.nodes.find((n) => n.id === id);
  }

  /** Categories whose nodes match every word of `query` (display name, id, category, description). */
  search(query: string): CatalogueCategory[] {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0) return this.categories;
    const matches = (n: CatalogueNode): boolean => {
      const hay = `${n.display_name} ${n.id} ${n.category} ${n.description}`.toLowerCase();
      return words.every((w) => hay.includes(w));
    };
    return this.categories
      .map((c) => ({ name: c.name, nodes: c.nodes.filter(matches) }))
      .filter((c) => c.nodes.length > 0);
  }
}

function group(nodes: CatalogueNode[]): CatalogueCategory[] {
  const byName = new Map<string, CatalogueNode[]>();
  for (const node of nodes) {
    const name = node.category || 'other';
    byName.set(name, [...(byName.get(name) ?? []), node]);
  }
  return [...byName].map(([name, list]) => ({ name, nodes: list }));
}
