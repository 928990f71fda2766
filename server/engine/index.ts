/** The engine: graph model, validation, planning, cache, executor and queue. No HTTP here. */
export { NodeRegistry, type NodeCatalogueJson } from './registry.ts';
export { ApiPromptSchema, isLink, type ApiPrompt, type ApiNode, type InputValue, type LinkRef } from '../protocol/prompt.ts';
export { WORKFLOW_FORMAT, WORKFLOW_VERSION, WorkflowSchema, parseWorkflow, isWorkflowFile, type Workflow, type WorkflowNode } from '../protocol/workflow-schema.ts';
export { workflowToPrompt, findWorkflowNode } from './workflow.ts';
export { compilePrompt, type CompiledGraph, type ValidationIssue, type IssueCode } from './validate.ts';
export { LruOutputCache, type OutputCache, type CacheEntry } from './cache.ts';
export { EventHub, type EngineEvent, type EventSink, type NodeErrorInfo, type PromptStatus } from './events.ts';
export { executeGraph, type PromptResult, type ExecuteOptions, type PreviewEncoder } from './executor.ts';
export { PromptQueue, type HistoryEntry, type QueueItem, type SubmitRequest, type SubmitResult } from './queue.ts';
export type { PromptQueueApi } from './queue-api.ts';
