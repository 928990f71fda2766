/**
 * GET /object_info in ComfyUI's shape: our node catalogue (POST /prompt accepts our class types
 * as they are), and the ComfyUI node types that POST /prompt maps onto ours, each saying so.
 */
import type { NodeEnv } from '../../nodes/api/env.ts';
import { comboOptions, type WidgetSpec } from '../../nodes/api/widgets.ts';
import type { NodeRegistry } from '../engine/registry.ts';
import { MAPPED_TYPES } from './import.ts';
import { WIDGETS } from './widgets.ts';

type InputSpec = [unknown, Record<string, unknown>?];

function widgetSpec(spec: WidgetSpec, env: NodeEnv): InputSpec {
  const extra: Record<string, unknown> = spec.description ? { tooltip: spec.description } : {};
  switch (spec.kind) {
    case 'INT':
    case 'FLOAT':
      return [spec.kind, { ...extra, default: spec.default, min: spec.min, max: spec.max, ...(spec.step ? { step: spec.step } : {}) }];
    case 'SEED':
      return ['INT', { ...extra, default: spec.default, min: 0, max: Number.MAX_SAFE_INTEGER, control_after_generate: true }];
    case 'BOOLEAN':
      return ['BOOLEAN', { ...extra, default: spec.default }];
    case 'STRING':
      return ['STRING', { ...extra, default: spec.default, multiline: spec.multiline === true }];
    case 'COMBO':
      return [comboOptions(spec, env), { ...extra, default: spec.default, ...(spec.upload ? { image_upload: true } : {}) }];
  }
}

export function objectInfo(registry: NodeRegistry, env: NodeEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const type of MAPPED_TYPES) {
    out[type] = {
      name: type,
      display_name: type,
      description: 'A ComfyUI node that POST /prompt accepts and maps onto SUPIR Studio nodes (see the README, "ComfyUI").',
      category: 'ComfyUI (mapped)',
      python_module: 'supir_studio.comfy',
      input: { required: Object.fromEntries((WIDGETS[type] ?? []).map((w) => [w.name, ['*']])) },
      input_order: { required: (WIDGETS[type] ?? []).map((w) => w.name) },
      output: [],
      output_is_list: [],
      output_name: [],
      output_node: ['SaveImage', 'PreviewImage', 'Image Comparer (rgthree)'].includes(type),
    };
  }
  for (const def of registry.all()) {
    const required: Record<string, InputSpec> = {};
    const optional: Record<string, InputSpec> = {};
    for (const [name, spec] of Object.entries(def.inputs)) (spec.optional ? optional : required)[name] = [spec.type, spec.description ? { tooltip: spec.description } : {}];
    for (const [name, spec] of Object.entries(def.widgets)) required[name] = widgetSpec(spec, env);
    const outputs = Object.entries(def.outputs);
    out[def.id] = {
      name: def.id,
      display_name: def.displayName,
      description: def.description,
      category: `supir-studio/${def.category}`,
      python_module: 'supir_studio',
      input: { required, optional },
      input_order: { required: Object.keys(required), optional: Object.keys(optional) },
      output: outputs.map(([, t]) => t),
      output_is_list: outputs.map(() => false),
      output_name: outputs.map(([n]) => n),
      output_node: def.output === true,
    };
  }
  return out;
}
