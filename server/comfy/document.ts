/**
 * What a file or request body holds, and the SUPIR Studio workflow it becomes: our workflow as it
 * is, a ComfyUI workflow or API prompt imported, a PNG's embedded workflow (ours, or ComfyUI's
 * `workflow` / `prompt` text chunks). Used by the CLI's `run` and by the HTTP routes.
 */
import fs from 'node:fs';
import { StudioError } from '../../nodes/api/errors.ts';
import { isPng } from '../../nodes/image/png-chunks.ts';
import { readPngTextChunks } from '../../nodes/image/png-text.ts';
import type { NodeRegistry } from '../engine/registry.ts';
import { isWorkflowFile } from '../protocol/workflow-schema.ts';
import { isComfyApiWorkflow, isComfyUiWorkflow } from './graph.ts';
import { importComfy, type ComfyImport, type ImportOptions } from './import.ts';
import { pngDocumentsFromText } from '../protocol/png-documents.ts';

/** ComfyUI's SaveImage and PreviewImage take `images`; ours take `image`. */
const COMFY_ONLY_INPUTS = new Set(['images']);

/**
 * An API prompt is ours when every node is one of our types with our input names; otherwise it
 * is ComfyUI's (its LoadImage/SaveImage share our type names but not all input names).
 */
export function isOurApiPrompt(raw: unknown, registry: NodeRegistry): boolean {
  if (!isComfyApiWorkflow(raw)) return false;
  return Object.values(raw as Record<string, { class_type: string; inputs?: Record<string, unknown> }>).every((n) => {
    const def = registry.get(n.class_type);
    if (!def) return false;
    return Object.keys(n.inputs ?? {}).every((name) => !COMFY_ONLY_INPUTS.has(name) && (Object.hasOwn(def.inputs, name) || Object.hasOwn(def.widgets, name)));
  });
}

/** Whether a parsed document is ComfyUI's (a UI workflow, or an API prompt that is not ours). */
export function isComfyOnly(raw: unknown, registry: NodeRegistry): boolean {
  if (isWorkflowFile(raw)) return false;
  return isComfyUiWorkflow(raw) || (isComfyApiWorkflow(raw) && !isOurApiPrompt(raw, registry));
}

/** The `workflow` and `prompt` text chunks of a PNG, parsed (absent or broken ones left out). */
export function pngDocuments(bytes: Uint8Array): { workflow?: unknown; prompt?: unknown } {
  const text = readPngTextChunks(bytes);
  return pngDocumentsFromText(text);
}

export interface ReadDocument {
  /** Our workflow file, our API prompt, or (after import) the workflow made from a ComfyUI file. */
  raw: unknown;
  imported?: ComfyImport;
}

/**
 * Turns a document (and, from a PNG, its prompt) into what our engine reads. A ComfyUI UI
 * workflow is preferred to its prompt (it has positions, groups, muted nodes); the prompt then
 * names the widget values.
 */
export function resolveDocument(doc: { workflow?: unknown; prompt?: unknown }, options: ImportOptions & { name?: string }): ReadDocument {
  const { workflow, prompt } = doc;
  if (workflow !== undefined && isWorkflowFile(workflow)) return { raw: workflow };
  if (workflow !== undefined && isComfyUiWorkflow(workflow)) return { raw: undefined, imported: importComfy(workflow, { ...options, prompt }) };
  if (workflow !== undefined && isComfyOnly(workflow, options.registry)) return { raw: undefined, imported: importComfy(workflow, options) };
  if (prompt !== undefined && isComfyOnly(prompt, options.registry)) return { raw: undefined, imported: importComfy(prompt, options) };
  return { raw: workflow ?? prompt };
}

/** Reads a file for `supir-studio run`: JSON (ours or ComfyUI's) or a PNG with an embedded workflow. */
export function readRunFile(file: string, options: ImportOptions): ReadDocument {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new StudioError('NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`);
  }
  if (isPng(bytes)) {
    const docs = pngDocuments(bytes);
    if (docs.workflow === undefined && docs.prompt === undefined) throw new StudioError('VALIDATION', `${file} holds no workflow (no "workflow" or "prompt" text chunk)`);
    return withRaw(resolveDocument(docs, options));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new StudioError('VALIDATION', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return withRaw(isComfyOnly(raw, options.registry) ? { raw: undefined, imported: importComfy(raw, options) } : { raw });
}

function withRaw(doc: ReadDocument): ReadDocument {
  return doc.imported ? { raw: doc.imported.workflow, imported: doc.imported } : doc;
}
