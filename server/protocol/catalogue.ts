/** What `GET /api/nodes` answers: the editor builds its node classes from it. */
export interface NodeCatalogueJson {
  socket_types: Array<{ name: string; color: string }>;
  nodes: Array<{
    id: string;
    display_name: string;
    category: string;
    description: string;
    output_node: boolean;
    nondeterministic: boolean;
    inputs: Array<{ name: string; type: string; optional: boolean; description: string }>;
    widgets: Array<Record<string, unknown> & { name: string; kind: string; link_type: string }>;
    outputs: Array<{ name: string; type: string }>;
  }>;
}
