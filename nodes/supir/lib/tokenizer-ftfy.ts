/**
 * The part of `ftfy.fix_text` (v6.3, default settings) that changes what a CLIP tokenizer sees.
 * Both SDXL tokenizers call it first, so a prompt with curly quotes, ligatures, full-width
 * letters, decomposed accents, HTML entities or UTF-8 mojibake gets different ids without it.
 *
 * Implemented, in ftfy's order and repeated until nothing changes (ftfy loops the same way):
 * unescape_html ('auto': skipped when the text contains '<'), a mojibake fix, fix_c1_controls,
 * fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks, fix_surrogates,
 * remove_terminal_escapes, remove_control_chars, then NFC.
 *
 * The mojibake fix is narrower than ftfy's: it decodes runs that are UTF-8 read as Latin-1 or
 * Windows-1252 (`cafÃ©` → `café`, `â€™` → `’`), which is by far the common case, and leaves
 * the rarer encodings ftfy also tries (MacRoman, cp437, Windows-125x) alone.
 */
import { ftfyUnescapeHtml } from './tokenizer-html.ts';

/** Windows-1252's 0x80–0x9F; the five undefined bytes map to themselves ("sloppy" 1252). */
const CP1252_HIGH = '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ';

/** Characters that are one byte in Latin-1 or Windows-1252, and that byte. */
const SINGLE_BYTE = new Map<string, number>();
for (let b = 0; b < 256; b++) SINGLE_BYTE.set(String.fromCharCode(b), b);
for (let i = 0; i < 32; i++) SINGLE_BYTE.set(CP1252_HIGH[i]!, 0x80 + i);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Continuation bytes 0x80–0xBF as characters: Latin-1's, plus Windows-1252's for 0x80–0x9F. */
const CONT = `[\\x80-\\xbf${CP1252_HIGH.replace(/[\x80-\x9f]/g, '')}]`;
/** A lead byte and exactly the continuation bytes it announces. */
const MOJIBAKE = new RegExp(`[\\xc2-\\xdf]${CONT}|[\\xe0-\\xef]${CONT}{2}|[\\xf0-\\xf4]${CONT}{3}`, 'g');

/** UTF-8 sequences that were decoded one byte per character, decoded properly. */
function fixMojibake(text: string): string {
  return text.replace(MOJIBAKE, (run) => {
    try {
      // The strict decoder rejects what the regex lets through: overlong forms, surrogates.
      return strictUtf8.decode(Uint8Array.from(run, (c) => SINGLE_BYTE.get(c)!));
    } catch {
      return run;
    }
  });
}

const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ', ĳ: 'ij', ŉ: 'ʼn', Ǳ: 'DZ', ǲ: 'Dz', ǳ: 'dz', Ǆ: 'DŽ', ǅ: 'Dž', ǆ: 'dž', Ǉ: 'LJ', ǈ: 'Lj', ǉ: 'lj',
  Ǌ: 'NJ', ǋ: 'Nj', ǌ: 'nj', ﬀ: 'ff', ﬁ: 'fi', ﬂ: 'fl', ﬃ: 'ffi', ﬄ: 'ffl', ﬅ: 'ſt', ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

/** ftfy's width map: U+3000 → space, and U+FF01–U+FFEF to their NFKC forms. */
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const fixWidth = (c: string): string => (c === '\u3000' ? ' ' : c.normalize('NFKC'));

/** ftfy's remove_control_chars set (tab, LF, FF, CR are kept). */
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function fixOnce(text: string, unescapeHtml: boolean): string {
  let t = unescapeHtml ? ftfyUnescapeHtml(text) : text;
  t = fixMojibake(t);
  t = t.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!);
  t = t.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
  t = t.replace(WIDTH_RE, fixWidth);
  t = t.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
  t = t.replace(/\r\n|[\r\u2028\u2029\x85]/g, '\n');
  t = t.replace(LONE_SURROGATE, '\ufffd');
  t = t.replace(/\x1b\[[\d;]*[a-zA-Z]/g, '');
  t = t.replace(CONTROL_RE, '');
  return t.normalize('NFC');
}

/** `ftfy.fix_text(text)` with default settings, within the limits described above. */
export function fixText(text: string): string {
  // 'auto' HTML unescaping is decided once for the whole text, as fix_text does.
  const unescapeHtml = !text.includes('<');
  let t = text;
  for (let i = 0; i < 16; i++) {
    const next = fixOnce(t, unescapeHtml);
    if (next === t) break;
    t = next;
  }
  return t;
}
