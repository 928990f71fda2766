/**
 * What an import or export did, node by node: which ComfyUI node became which of ours, which
 * values were translated (units, names), and what has no equivalent here. Shown by the editor
 * after an import, printed by the CLI, answered by the API.
 */
import type { ComfyReport, ComfyReportEntry as ReportEntry, ComfyReportLevel as ReportLevel } from '../protocol/comfy.ts';

export type { ComfyReport, ReportEntry, ReportLevel };

export class ReportBuilder {
  readonly entries: ReportEntry[] = [];
  readonly convert: string[] = [];
  constructor(readonly source: string) {}

  add(level: ReportLevel, comfy: string, message: string): void {
    if (!this.entries.some((e) => e.level === level && e.comfy === comfy && e.message === message)) this.entries.push({ level, comfy, message });
  }

  mapped(comfy: string, message: string): void {
    this.add('mapped', comfy, message);
  }

  translated(comfy: string, message: string): void {
    this.add('translated', comfy, message);
  }

  unsupported(comfy: string, message: string): void {
    this.add('unsupported', comfy, message);
  }

  build(): ComfyReport {
    const counts = { mapped: 0, translated: 0, unsupported: 0 };
    for (const e of this.entries) counts[e.level]++;
    return { source: this.source, entries: this.entries, convert: this.convert, counts };
  }
}

/** The report as plain text (CLI, logs): one line per entry, grouped by level. */
export function reportText(report: ComfyReport): string {
  const lines = [`${report.source}: ${report.counts.mapped} mapped, ${report.counts.translated} translated, ${report.counts.unsupported} unsupported`];
  for (const level of ['mapped', 'translated', 'unsupported'] as const) {
    const entries = report.entries.filter((e) => e.level === level);
    if (entries.length === 0) continue;
    lines.push(`${level}:`);
    for (const e of entries) lines.push(`  ${e.comfy}: ${e.message}`);
  }
  if (report.convert.length) lines.push('model packs to make:', ...report.convert.map((c) => `  ${c}`));
  return lines.join('\n');
}
