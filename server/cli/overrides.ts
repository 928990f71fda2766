import { StudioError } from '../../nodes/api/errors.ts';
import { findWorkflowNode, type ApiPrompt, type Workflow } from '../engine/index.ts';

/** One `--set NODE.WIDGET=VALUE`: NODE is a node id, title or type; VALUE is JSON or plain text. */
export interface Override {
  node: string;
  widget: string;
  value: string | number | boolean;
}

export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  const dot = text.lastIndexOf('.', eq < 0 ? undefined : eq);
  if (eq < 0 || dot <= 0 || dot > eq - 2) {
    throw new StudioError('BAD_INPUT', `--set ${JSON.stringify(text)}: expected NODE.WIDGET=VALUE (NODE is a node id or title)`);
  }
  const raw = text.slice(eq + 1);
  return { node: text.slice(0, dot), widget: text.slice(dot + 1, eq), value: parseValue(raw) };
}

function parseValue(raw: string): string | number | boolean {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return raw;
}

/** Applies overrides to a workflow (so the file embedded in outputs shows the values used). */
export function applyToWorkflow(wf: Workflow, overrides: Override[]): void {
  for (const o of overrides) {
    const node = findWorkflowNode(wf, o.node);
    if (!node) throw new StudioError('BAD_INPUT', `--set ${o.node}.${o.widget}: no node with id, title or type '${o.node}'`);
    node.widgets_values[o.widget] = o.value;
  }
}

/** Applies overrides to an API prompt. */
export function applyToPrompt(prompt: ApiPrompt, overrides: Override[]): void {
  for (const o of overrides) {
    const entry =
      // Own properties only: `--set constructor.x=1` names no node.
      (Object.hasOwn(prompt, o.node) ? prompt[o.node] : undefined) ??
      Object.values(prompt).find((n) => n._meta?.title === o.node) ??
      Object.values(prompt).find((n) => n.class_type === o.node);
    if (!entry) throw new StudioError('BAD_INPUT', `--set ${o.node}.${o.widget}: no node with id, title or type '${o.node}'`);
    entry.inputs[o.widget] = o.value;
  }
}
