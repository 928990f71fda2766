/**
 * ComfyUI interoperability: import (UI workflow schema 0.4/1.0, API prompt, PNG chunks) with a
 * report, export to the API format, and ComfyUI's HTTP routes and websocket messages.
 */
export { importComfy, MAPPED_TYPES, type ComfyImport, type ImportOptions } from './import.ts';
export { exportComfy, type ComfyApiPrompt } from './export.ts';
export { isComfyOnly, isOurApiPrompt, pngDocuments, readRunFile, resolveDocument } from './document.ts';
export { isComfyApiWorkflow, isComfyDocument, isComfyUiWorkflow, readComfyGraph } from './graph.ts';
export { reportText, type ComfyReport } from './report.ts';
export { ComfyBridge } from './bridge.ts';
export { comfyRouter } from './routes.ts';
export { attachComfyWebSocket, comfyMessages, isComfySocket } from './ws.ts';
