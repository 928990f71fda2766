/**
 * What importing a ComfyUI workflow (or exporting one) did, node by node: the answer of
 * POST /api/comfy/import and /export, shown by the editor after an import (server/comfy/report.ts).
 */
export type ComfyReportLevel = 'mapped' | 'translated' | 'unsupported';

export interface ComfyReportEntry {
  level: ComfyReportLevel;
  /** The ComfyUI node: `#7 SUPIR_sample`. */
  comfy: string;
  message: string;
}

export interface ComfyReport {
  /** What was read: "ComfyUI workflow (schema 0.4)", "ComfyUI API prompt". */
  source: string;
  entries: ComfyReportEntry[];
  /** Commands that make the model packs the workflow names. */
  convert: string[];
  counts: Record<ComfyReportLevel, number>;
}
