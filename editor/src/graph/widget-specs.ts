import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';

/**
 * How a catalogue widget becomes a litegraph widget: pure data, so it is unit-tested without a
 * canvas. node-classes.ts turns each plan into `node.addWidget(...)`.
 */
export type CatalogueNode = NodeCatalogueJson['nodes'][number];
export type CatalogueWidget = CatalogueNode['widgets'][number];
export type Scalar = string | number | boolean | null;

export const SEED_MAX = Number.MAX_SAFE_INTEGER;
export const SEED_CONTROL_WIDGET = 'control after queue';
/** Read by the app shell (state/seed-control.ts): `{ [seed widget name]: mode }`. */
export const SEED_CONTROL_PROPERTY = 'control_after_generate';
export const SEED_CONTROL_MODES = ['fixed', 'increment', 'randomize'] as const;
export type SeedControlMode = (typeof SEED_CONTROL_MODES)[number];

export interface NumberOptions {
  min: number;
  max: number;
  /** The real step (litegraph's `step2`). */
  step2: number;
  /** Litegraph's legacy step, ten times the real one. */
  step: number;
  precision: number;
}

export type WidgetPlan =
  | { type: 'number'; name: string; value: number; integer: boolean; seed: boolean; linkType: string; options: NumberOptions; tooltip?: string }
  | { type: 'combo'; name: string; value: string; linkType: string; options: { values: string[] }; upload?: 'image'; tooltip?: string }
  | { type: 'toggle'; name: string; value: boolean; linkType: string; options: { on: string; off: string }; tooltip?: string }
  | { type: 'text'; name: string; value: string; linkType: string; options: { multiline: boolean; maxLength?: number }; tooltip?: string };

const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** Decimal places a step needs: 1 → 0, 0.01 → 2, 0.25 → 2, 0.5 → 1 (at most 6). */
export function precisionFromStep(step: number): number {
  if (!Number.isFinite(step) || step <= 0) return 0;
  for (let p = 0; p <= 6; p++) {
    const scaled = step * 10 ** p;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 * Math.max(1, scaled)) return p;
  }
  return 6;
}

export function planWidget(spec: CatalogueWidget): WidgetPlan {
  const tooltip = typeof spec.description === 'string' && spec.description ? spec.description : undefined;
  const base = { name: spec.name, linkType: spec.link_type, ...(tooltip ? { tooltip } : {}) };
  switch (spec.kind) {
    case 'INT':
    case 'SEED':
    case 'FLOAT': {
      const seed = spec.kind === 'SEED';
      const integer = spec.kind !== 'FLOAT';
      const min = seed ? 0 : num(spec.min, integer ? -2147483648 : -1e9);
      const max = seed ? SEED_MAX : num(spec.max, integer ? 2147483647 : 1e9);
      const rawStep = num(spec.step, integer ? 1 : 0.01);
      const step = integer ? Math.max(1, Math.round(rawStep)) : rawStep > 0 ? rawStep : 0.01;
      const precision = integer ? 0 : precisionFromStep(step);
      const options: NumberOptions = { min, max, step2: step, step: step * 10, precision };
      const value = sanitizeNumber(num(spec.default, min), options, integer);
      return { type: 'number', ...base, value, integer, seed, options };
    }
    case 'BOOLEAN':
      return { type: 'toggle', ...base, value: spec.default === true, options: { on: 'true', off: 'false' } };
    case 'COMBO': {
      const values = Array.isArray(spec.options) ? spec.options.map(String) : [];
      const value = typeof spec.default === 'string' ? spec.default : (values[0] ?? '');
      return { type: 'combo', ...base, value, options: { values }, ...(spec.upload === 'image' ? { upload: 'image' as const } : {}) };
    }
    default: {
      // STRING, and any kind a newer server adds: edit it as text.
      const maxLength = typeof spec.maxLength === 'number' ? spec.maxLength : undefined;
      const value = typeof spec.default === 'string' ? spec.default : spec.default == null ? '' : String(spec.default);
      return { type: 'text', ...base, value, options: { multiline: spec.multiline === true, ...(maxLength ? { maxLength } : {}) } };
    }
  }
}

/** Rounds to the widget's precision (integers for INT and SEED) and clamps to its range. */
export function sanitizeNumber(value: number, options: Pick<NumberOptions, 'min' | 'max' | 'precision'>, integer: boolean): number {
  if (!Number.isFinite(value)) return Math.min(Math.max(0, options.min), options.max);
  const factor = 10 ** (integer ? 0 : options.precision);
  const rounded = Math.round(value * factor) / factor;
  return Math.min(options.max, Math.max(options.min, rounded));
}

/**
 * A value read from a file, made fit for the widget: missing values take the default, numbers
 * stay as they are (validation reports out-of-range ones), other types are converted when possible.
 */
export function coerceWidgetValue(plan: WidgetPlan, value: unknown): string | number | boolean {
  if (value === undefined || value === null) return plan.value;
  switch (plan.type) {
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      return Number.isFinite(n) ? n : plan.value;
    }
    case 'toggle':
      return typeof value === 'boolean' ? value : value === 'true' ? true : value === 'false' ? false : plan.value;
    default:
      return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : plan.value;
  }
}

/** A widget value as the workflow stores it: finite numbers, text, booleans, else null. */
export function toScalar(value: unknown): Scalar {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  return null;
}

export function isSeedControlMode(value: unknown): value is SeedControlMode {
  return typeof value === 'string' && (SEED_CONTROL_MODES as readonly string[]).includes(value);
}

/** The control mode of one seed widget, from `properties.control_after_generate` (a mode or a map). */
export function seedControlOf(properties: Record<string, unknown> | undefined, widget: string): SeedControlMode {
  const control = properties?.[SEED_CONTROL_PROPERTY];
  if (isSeedControlMode(control)) return control;
  if (control && typeof control === 'object') {
    const mode = (control as Record<string, unknown>)[widget];
    if (isSeedControlMode(mode)) return mode;
  }
  return 'fixed';
}

/** The property value after setting one seed widget's mode (kept as a map by widget name). */
export function withSeedControl(current: unknown, widget: string, mode: SeedControlMode): Record<string, SeedControlMode> {
  const map: Record<string, SeedControlMode> = {};
  if (current && typeof current === 'object') {
    for (const [k, v] of Object.entries(current as Record<string, unknown>)) if (isSeedControlMode(v)) map[k] = v;
  }
  map[widget] = mode;
  return map;
}
