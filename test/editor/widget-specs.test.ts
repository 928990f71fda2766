import { describe, expect, it } from 'vitest';
import {
  coerceWidgetValue,
  planWidget,
  precisionFromStep,
  sanitizeNumber,
  seedControlOf,
  SEED_MAX,
  toScalar,
  withSeedControl,
  type CatalogueWidget,
} from '../../editor/src/graph/widget-specs.ts';
import { lookup } from './helpers.ts';

const widget = (node: string, name: string): CatalogueWidget => lookup.get(node)!.widgets.find((w) => w.name === name)!;

describe('widget plans from the catalogue', () => {
  it('INT becomes an integer number widget with the range and a step of 1', () => {
    const plan = planWidget(widget('ImageResize', 'width'));
    expect(plan).toMatchObject({ type: 'number', integer: true, seed: false, value: 1024, linkType: 'INT' });
    expect(plan.type === 'number' && plan.options).toEqual({ min: 1, max: 16384, step2: 1, step: 10, precision: 0 });
  });

  it('FLOAT takes its precision from the step', () => {
    const plan = planWidget(widget('ImageResize', 'scale'));
    expect(plan).toMatchObject({ type: 'number', integer: false, value: 2, linkType: 'FLOAT' });
    expect(plan.type === 'number' && plan.options).toMatchObject({ min: 0.01, max: 16, step2: 0.01, precision: 2 });
  });

  it('SEED is a number widget over 0..2^53-1', () => {
    const plan = planWidget(widget('PrimitiveSeed', 'seed'));
    expect(plan).toMatchObject({ type: 'number', seed: true, integer: true, linkType: 'INT' });
    expect(plan.type === 'number' && [plan.options.min, plan.options.max]).toEqual([0, SEED_MAX]);
  });

  it('COMBO lists its options, STRING is text (multiline kept), BOOLEAN a toggle', () => {
    expect(planWidget(widget('ImageResize', 'method'))).toMatchObject({ type: 'combo', value: 'lanczos', options: { values: ['lanczos', 'bicubic', 'area', 'nearest', 'bilinear'] } });
    expect(planWidget(widget('SaveImage', 'filename_prefix'))).toMatchObject({ type: 'text', value: 'supir', options: { multiline: false, maxLength: 200 } });
    expect(planWidget(widget('PrimitiveText', 'value'))).toMatchObject({ type: 'text', options: { multiline: true } });
    expect(planWidget({ name: 'flag', kind: 'BOOLEAN', default: true, link_type: 'BOOLEAN' })).toMatchObject({ type: 'toggle', value: true });
  });

  it('an unknown widget kind from a newer server is edited as text', () => {
    expect(planWidget({ name: 'x', kind: 'COLOR', default: '#fff', link_type: 'STRING' })).toMatchObject({ type: 'text', value: '#fff' });
  });

  it('precision from step', () => {
    expect([1, 0.5, 0.25, 0.01, 0.001, 0.1 + 0.2, Math.PI].map(precisionFromStep)).toEqual([0, 1, 2, 2, 3, 1, 6]);
  });

  it('numbers are rounded to the precision and clamped', () => {
    expect(sanitizeNumber(2.0300000000000002, { min: 0.01, max: 16, precision: 2 }, false)).toBe(2.03);
    expect(sanitizeNumber(99, { min: 0.01, max: 16, precision: 2 }, false)).toBe(16);
    expect(sanitizeNumber(7.6, { min: 1, max: 100, precision: 0 }, true)).toBe(8);
    expect(sanitizeNumber(Number.NaN, { min: 1, max: 100, precision: 0 }, true)).toBe(1);
  });

  it('file values are coerced to the widget, missing ones take the default', () => {
    const width = planWidget(widget('ImageResize', 'width'));
    expect(coerceWidgetValue(width, undefined)).toBe(1024);
    expect(coerceWidgetValue(width, '512')).toBe(512);
    expect(coerceWidgetValue(width, 'abc')).toBe(1024);
    expect(coerceWidgetValue(width, 99999)).toBe(99999); // out of range stays: validation reports it
    expect(coerceWidgetValue(planWidget(widget('ImageResize', 'method')), 3)).toBe('3');
  });

  it('toScalar keeps what the schema accepts', () => {
    expect([1, 'a', true, Number.NaN, undefined, {}].map(toScalar)).toEqual([1, 'a', true, null, null, null]);
  });
});

describe('seed control property', () => {
  it('reads a mode per widget or one mode for all, default fixed', () => {
    expect(seedControlOf(undefined, 'seed')).toBe('fixed');
    expect(seedControlOf({ control_after_generate: 'randomize' }, 'seed')).toBe('randomize');
    expect(seedControlOf({ control_after_generate: { seed: 'increment' } }, 'seed')).toBe('increment');
    expect(seedControlOf({ control_after_generate: { seed: 'bogus' } }, 'seed')).toBe('fixed');
  });

  it('writes a map by widget name, keeping the others', () => {
    expect(withSeedControl({ a: 'randomize', junk: 1 }, 'seed', 'increment')).toEqual({ a: 'randomize', seed: 'increment' });
    expect(withSeedControl(undefined, 'seed', 'fixed')).toEqual({ seed: 'fixed' });
  });
});
