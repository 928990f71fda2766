import { describe, expect, it } from 'vitest';
import { linkAllowed, linkColours, mix, parseHex } from '../../editor/src/graph/link-rules.ts';
import { catalogue } from './helpers.ts';

describe('link rules', () => {
  it('a target takes its own type', () => {
    expect(linkAllowed('IMAGE', 'IMAGE')).toBe(true);
    expect(linkAllowed('IMAGE', 'LATENT')).toBe(false);
    expect(linkAllowed('STRING', 'INT')).toBe(false);
  });

  it('a FLOAT input takes an INT output, not the other way round', () => {
    expect(linkAllowed('INT', 'FLOAT')).toBe(true);
    expect(linkAllowed('FLOAT', 'INT')).toBe(false);
  });

  it('no wildcards: empty, "*" and 0 connect to nothing', () => {
    expect(linkAllowed('*', 'IMAGE')).toBe(false);
    expect(linkAllowed('', 'IMAGE')).toBe(false);
    expect(linkAllowed(0, 'IMAGE')).toBe(false);
  });

  it('types the catalogue does not know connect only to themselves', () => {
    expect(linkAllowed('FANCY', 'FANCY')).toBe(true);
    expect(linkAllowed('FANCY', 'IMAGE')).toBe(false);
  });
});

describe('link colours', () => {
  it('colour each socket type from the catalogue, with a darker unconnected shade', () => {
    const { on, off } = linkColours(catalogue);
    expect(on.IMAGE).toBe('#64b5f6');
    expect(Object.keys(on).sort()).toEqual(catalogue.socket_types.map((t) => t.name).sort());
    expect(off.IMAGE).toMatch(/^#[0-9a-f]{6}$/);
    expect(off.IMAGE).not.toBe(on.IMAGE);
  });

  it('mixes and parses hex colours', () => {
    expect(mix('#000000', '#ffffff', 0.5)).toBe('#808080');
    expect(mix('#fff', '#000', 0)).toBe('#ffffff');
    expect(mix('red', '#000', 0.5)).toBe('red');
    expect(parseHex('#1a2B3c')).toEqual([26, 43, 60]);
    expect(parseHex('nope')).toBeNull();
  });
});
