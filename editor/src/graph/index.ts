export { createGraphView } from './create-graph-view.ts';
export type { ComparePair, GraphView, NodeRunState, NodeRunStatus } from './graph-view.ts';
export { baseNodeId, filesPatch, SweepRuns } from './sweep-runs.ts';
