/**
 * The contract between the server and its clients (editor, scripts): message and body types,
 * schemas and frame decoding. Pure TypeScript with no Node imports, so the browser uses it as is.
 */
export type { NodeCatalogueJson } from './catalogue.ts';
export type { ComfyReport, ComfyReportEntry, ComfyReportLevel } from './comfy.ts';
export type { BranchInfo, EngineEvent, EngineEventType, NodeErrorInfo, PromptStatus } from './events.ts';
export { BINARY_KIND_PREVIEW, decodePreviewFrame, decodeServerMessage, type PreviewEvent, type PreviewHeader, type ServerMessage } from './frames.ts';
export type { HistoryEntry, QueueItem } from './history.ts';
export type { SupirEstimateJson } from './supir-estimate.ts';
export { ApiPromptSchema, isLink, type ApiPrompt, type InputValue, type LinkRef } from './prompt.ts';
export { ISSUE_CODES, type IssueCode, type ValidationIssue } from './validation.ts';
export {
  MODE_ALWAYS,
  MODE_BYPASS,
  MODE_MUTED,
  WORKFLOW_FORMAT,
  WORKFLOW_VERSION,
  WorkflowSchema,
  formatIssues,
  isWorkflowFile,
  parseWorkflow,
  type Workflow,
  type WorkflowNode,
} from './workflow-schema.ts';
export type { FileRef, DataFolder, TableData } from '../../nodes/api/file-ref.ts';
export type { ErrorCode } from '../../nodes/api/errors.ts';
