/**
 * HTML entity decoding as the two CLIP tokenizers see it:
 *
 * - `pythonHtmlUnescape` is Python's `html.unescape`, which open_clip applies twice after ftfy
 *   (numeric references with HTML5's replacement rules, names with or without ';', and for an
 *   unknown name the longest known legacy prefix, as `&ampx` → `&x`).
 * - `ftfyUnescapeHtml` is ftfy's stricter variant: only `&…;` forms, plus all-caps spellings of
 *   lower-case names (`&EACUTE;` → `É`).
 *
 * Python knows all 2231 HTML5 names; this table holds the HTML 4 set that prompts realistically
 * contain (Latin-1, typography, Greek, arrows, a few symbols). Any other name stays as written.
 */

/** Names of U+00A0…U+00FF in order: the HTML 4 Latin-1 set, also the legacy names without ';'. */
const LATIN1 =
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest ' +
  'Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig ' +
  'agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml';

/** Other HTML 4 names (with ';' only), as name:hex code point. */
const OTHERS =
  'apos:27 OElig:152 oelig:153 Scaron:160 scaron:161 Yuml:178 fnof:192 circ:2c6 tilde:2dc ensp:2002 emsp:2003 thinsp:2009 zwnj:200c zwj:200d lrm:200e rlm:200f ' +
  'ndash:2013 mdash:2014 lsquo:2018 rsquo:2019 sbquo:201a ldquo:201c rdquo:201d bdquo:201e dagger:2020 Dagger:2021 bull:2022 hellip:2026 permil:2030 prime:2032 Prime:2033 ' +
  'lsaquo:2039 rsaquo:203a oline:203e frasl:2044 euro:20ac trade:2122 larr:2190 uarr:2191 rarr:2192 darr:2193 harr:2194 rArr:21d2 hArr:21d4 minus:2212 infin:221e ne:2260 ' +
  'le:2264 ge:2265 asymp:2248 loz:25ca spades:2660 clubs:2663 hearts:2665 diams:2666';

const GREEK = 'Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho _ Sigma Tau Upsilon Phi Chi Psi Omega';

/** `name;` → text, and the names Python also accepts without ';' (its "legacy" entities). */
const WITH_SEMI = new Map<string, string>();
const LEGACY = new Map<string, string>();

function buildTables(): void {
  const legacy = (name: string, text: string): void => {
    LEGACY.set(name, text);
    WITH_SEMI.set(name, text);
  };
  for (const [name, text] of [['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['AMP', '&'], ['LT', '<'], ['GT', '>'], ['QUOT', '"'], ['COPY', '©'], ['REG', '®']] as const) {
    legacy(name, text);
  }
  LATIN1.split(' ').forEach((name, i) => legacy(name, String.fromCodePoint(0xa0 + i)));
  for (const entry of OTHERS.split(' ')) {
    const [name, hex] = entry.split(':') as [string, string];
    WITH_SEMI.set(name, String.fromCodePoint(parseInt(hex, 16)));
  }
  GREEK.split(' ').forEach((name, i) => {
    if (name === '_') return; // U+03A2 is unassigned: no capital final sigma
    WITH_SEMI.set(name, String.fromCodePoint(0x391 + i));
    WITH_SEMI.set(name.toLowerCase(), String.fromCodePoint(0x3b1 + i));
  });
  WITH_SEMI.set('sigmaf', 'ς');
}
buildTables();

/** HTML5's remapping of numeric references to C1 controls (Python's `_invalid_charrefs`). */
const CP1252_C1 = '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ';

function numericReference(num: number): string {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252_C1[num - 0x80]!;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  // Python drops the other controls and the noncharacters (its `_invalid_codepoints`).
  if ((num >= 0x1 && num <= 0x8) || num === 0xb || (num >= 0xe && num <= 0x1f) || (num >= 0x7f && num <= 0x9f)) return '';
  if ((num >= 0xfdd0 && num <= 0xfdef) || (num & 0xfffe) === 0xfffe) return '';
  return String.fromCodePoint(num);
}

const PY_CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(PY_CHARREF, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return numericReference(hex ? parseInt(digits, 16) : Number(digits));
    }
    if (ref.endsWith(';') && WITH_SEMI.has(ref.slice(0, -1))) return WITH_SEMI.get(ref.slice(0, -1))!;
    if (LEGACY.has(ref)) return LEGACY.get(ref)!;
    // The longest legacy name that prefixes the reference wins; the rest is kept as text.
    for (let x = ref.length - 1; x > 1; x--) {
      const hit = LEGACY.get(ref.slice(0, x));
      if (hit !== undefined) return hit + ref.slice(x);
    }
    return whole;
  });
}

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

export function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY, (ent) => {
    const name = ent.slice(1, -1);
    const direct = WITH_SEMI.get(name);
    if (direct !== undefined) return direct;
    if (name.startsWith('#')) {
      const out = pythonHtmlUnescape(ent);
      return out.includes(';') ? ent : out;
    }
    // ftfy also decodes upper-cased spellings of lower-case names, unless that spelling is
    // itself an entity (&AMP; is already covered above).
    const lower = name.toLowerCase();
    const hit = WITH_SEMI.get(lower);
    if (hit !== undefined && lower !== name && name === lower.toUpperCase()) return hit.toUpperCase();
    return ent;
  });
}
