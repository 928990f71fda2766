export { createGraphView } from './create-graph-view.ts';
export type { GraphView, NodeRunState, NodeRunStatus } from './graph-view.ts';
