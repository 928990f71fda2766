import type { NodeEnv } from './env.ts';
import type { SocketType } from './sockets.ts';

/** Widgets: constant inputs edited on the node. Each may instead be fed by a link of `linkType`. */
export interface IntWidget {
  kind: 'INT';
  default: number;
  min: number;
  max: number;
  step?: number;
  description?: string;
}
export interface FloatWidget {
  kind: 'FLOAT';
  default: number;
  min: number;
  max: number;
  step?: number;
  description?: string;
}
export interface StringWidget {
  kind: 'STRING';
  default: string;
  multiline?: boolean;
  maxLength?: number;
  description?: string;
}
export interface BooleanWidget {
  kind: 'BOOLEAN';
  default: boolean;
  description?: string;
}
export interface ComboWidget {
  kind: 'COMBO';
  /** Fixed choices, or choices read when asked (files in a data folder). */
  options: readonly string[] | ((env: NodeEnv) => string[]);
  default: string;
  /** Marks combos that list files, so the editor can offer an upload button. */
  upload?: 'image';
  /** Why a value is not in the list, in words that say what to do (a model not made yet, ...). */
  unlisted?: (value: string, env: NodeEnv) => string;
  description?: string;
}
/** A 64-bit-safe seed; the editor offers fixed / increment / randomize after each queue. */
export interface SeedWidget {
  kind: 'SEED';
  default: number;
  description?: string;
}

export type WidgetSpec = IntWidget | FloatWidget | StringWidget | BooleanWidget | ComboWidget | SeedWidget;

export type WidgetValue<W extends WidgetSpec> = W extends IntWidget | FloatWidget | SeedWidget
  ? number
  : W extends BooleanWidget
    ? boolean
    : string;

export const SEED_MAX = Number.MAX_SAFE_INTEGER;
export const STRING_MAX_LENGTH = 1_000_000;

export const int = (o: Omit<IntWidget, 'kind'>): IntWidget => ({ kind: 'INT', ...o });
export const float = (o: Omit<FloatWidget, 'kind'>): FloatWidget => ({ kind: 'FLOAT', ...o });
export const string = (o: Omit<StringWidget, 'kind'>): StringWidget => ({ kind: 'STRING', ...o });
export const boolean = (o: Omit<BooleanWidget, 'kind'>): BooleanWidget => ({ kind: 'BOOLEAN', ...o });
export const combo = (o: Omit<ComboWidget, 'kind'>): ComboWidget => ({ kind: 'COMBO', ...o });
export const seed = (o: Omit<SeedWidget, 'kind'> = { default: 0 }): SeedWidget => ({ kind: 'SEED', ...o });

/** The socket type whose links may drive this widget. */
export function widgetLinkType(spec: WidgetSpec): SocketType {
  switch (spec.kind) {
    case 'INT':
    case 'SEED':
      return 'INT';
    case 'FLOAT':
      return 'FLOAT';
    case 'BOOLEAN':
      return 'BOOLEAN';
    case 'STRING':
    case 'COMBO':
      return 'STRING';
  }
}

export function comboOptions(spec: ComboWidget, env: NodeEnv): string[] {
  return typeof spec.options === 'function' ? spec.options(env) : [...spec.options];
}

/**
 * Checks a widget value, returning the reason it is wrong or undefined. Used by validation for
 * literal values and by the executor for values that arrive over links.
 */
export function checkWidgetValue(spec: WidgetSpec, value: unknown, env: NodeEnv): string | undefined {
  switch (spec.kind) {
    case 'INT':
    case 'SEED': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return `expected an integer, got ${describe(value)}`;
      const [min, max] = spec.kind === 'SEED' ? [0, SEED_MAX] : [spec.min, spec.max];
      if (value < min || value > max) return `${value} is out of range [${min}, ${max}]`;
      return undefined;
    }
    case 'FLOAT':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `expected a finite number, got ${describe(value)}`;
      if (value < spec.min || value > spec.max) return `${value} is out of range [${spec.min}, ${spec.max}]`;
      return undefined;
    case 'BOOLEAN':
      return typeof value === 'boolean' ? undefined : `expected true or false, got ${describe(value)}`;
    case 'STRING': {
      if (typeof value !== 'string') return `expected text, got ${describe(value)}`;
      const max = spec.maxLength ?? STRING_MAX_LENGTH;
      return value.length > max ? `text is ${value.length} characters, over the limit of ${max}` : undefined;
    }
    case 'COMBO': {
      if (typeof value !== 'string') return `expected one of the listed values, got ${describe(value)}`;
      const options = comboOptions(spec, env);
      if (options.includes(value)) return undefined;
      if (spec.unlisted) return spec.unlisted(value, env);
      const shown = options.slice(0, 8).map((o) => JSON.stringify(o)).join(', ');
      return `${JSON.stringify(value)} is not in the list [${shown}${options.length > 8 ? ', …' : ''}]`;
    }
  }
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
