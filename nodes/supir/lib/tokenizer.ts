/**
 * CLIP's byte-level BPE tokenizer, in the two flavours SDXL's text encoders are fed with:
 *
 * - `hfIds`: transformers' slow CLIPTokenizer as FrozenCLIPEmbedder calls it (CLIP-L):
 *   `<|startoftext|>`/`<|endoftext|>` in the raw text are split out as special tokens first, every
 *   other piece goes through ftfy, whitespace collapsing and lower-casing; 75 text ids at most,
 *   then [49406, …, 49407] padded to 77 with 49407 (HF's pad token is the eot).
 * - `openClipIds`: open_clip.tokenize (bigG): ftfy, html.unescape twice, whitespace, lower-case;
 *   `<start_of_text>`/`<end_of_text>` are its special spellings; cut to 77 with the eot forced
 *   into the last slot, padded with 0 (bigG's pooling takes argmax(ids), so the pad must be 0).
 *
 * The vocabulary is open_clip's bpe_simple_vocab_16e6.txt.gz: 256 byte symbols in
 * bytes_to_unicode order, the same with `</w>`, then merges 1..48894 in rank order, then the two
 * special tokens — 49408 ids, the same mapping as HF's vocab.json/merges.txt for CLIP ViT-L/14.
 */
import { readFile } from 'node:fs/promises';
import zlib from 'node:zlib';
import { StudioError } from '../../api/errors.ts';
import { fixText } from './tokenizer-ftfy.ts';
import { pythonHtmlUnescape } from './tokenizer-html.ts';

export const CLIP_CONTEXT = 77;
export const CLIP_BOS = 49406;
export const CLIP_EOS = 49407;
const MERGES = 49152 - 256 - 2;

/** Python's `\s` (str.isspace), which both tokenizers' `re.sub(r'\s+', ' ')` collapse. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACES = new RegExp(`[${PY_SPACE}]+`, 'g');
const TRIM = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const whitespaceClean = (t: string): string => t.replace(SPACES, ' ').replace(TRIM, '');

/** The pre-tokenizer: specials, English contractions, letter runs, single digits, other runs. */
const piecePattern = (specials: string): RegExp =>
  new RegExp(`${specials}|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${PY_SPACE}\\p{L}\\p{N}]+`, 'giu');
const HF_PIECES = piecePattern('<\\|startoftext\\|>|<\\|endoftext\\|>');
const OPEN_CLIP_PIECES = piecePattern('<start_of_text>|<end_of_text>');
const HF_SPECIAL_SPLIT = /(<\|startoftext\|>|<\|endoftext\|>)/;

/** The flavours' spellings of the two special tokens, as their BPE caches pre-map them. */
const HF_SPECIALS = new Map([['<|startoftext|>', CLIP_BOS], ['<|endoftext|>', CLIP_EOS]]);
const OPEN_CLIP_SPECIALS = new Map([['<start_of_text>', CLIP_BOS], ['<end_of_text>', CLIP_EOS]]);

/**
 * GPT-2's reversible byte → printable character map: printable Latin-1 bytes stand for
 * themselves, the other 68 get U+0100… in byte order. `symbols` is the vocabulary order
 * (the printable ones first), `byChar[b]` the symbol of byte b.
 */
function bytesToUnicode(): { symbols: string[]; byChar: string[] } {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const byChar: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) byChar.push(String.fromCodePoint(printable(b) ? b : 256 + n++));
  const bytes = Array.from({ length: 256 }, (_, b) => b);
  const symbols = [...bytes.filter(printable), ...bytes.filter((b) => !printable(b))].map((b) => byChar[b]!);
  return { symbols, byChar };
}

export class ClipTokenizer {
  private readonly cache = new Map<string, number[]>();

  private constructor(
    private readonly encoder: Map<string, number>,
    private readonly ranks: Map<string, number>,
    private readonly byteChars: string[],
  ) {}

  /** Builds the tokenizer from the gzipped vocabulary bytes. */
  static fromGzip(gz: Uint8Array): ClipTokenizer {
    const lines = zlib.gunzipSync(gz).toString('utf8').split('\n');
    if (lines.length < MERGES + 1) throw new StudioError('BAD_INPUT', `CLIP BPE vocabulary has ${lines.length} lines, expected more than ${MERGES}`);
    const { symbols, byChar } = bytesToUnicode();
    const vocab = [...symbols, ...symbols.map((s) => `${s}</w>`)];
    const ranks = new Map<string, number>();
    for (let i = 0; i < MERGES; i++) {
      const [a, b] = lines[i + 1]!.split(' ') as [string, string];
      ranks.set(`${a} ${b}`, i);
      vocab.push(a + b);
    }
    vocab.push('<|startoftext|>', '<|endoftext|>');
    return new ClipTokenizer(new Map(vocab.map((s, i) => [s, i])), ranks, byChar);
  }

  static async load(gzPath: string): Promise<ClipTokenizer> {
    return ClipTokenizer.fromGzip(await readFile(gzPath));
  }

  /** HF CLIPTokenizer(text, truncation, max_length 77, padding 'max_length').input_ids. */
  hfIds(text: string): number[] {
    return frameChunk(this.hfTokens(text), CLIP_EOS);
  }

  /** The text's ids as CLIPTokenizer makes them, before framing and truncation. */
  hfTokens(text: string): number[] {
    const ids: number[] = [];
    for (const part of text.split(HF_SPECIAL_SPLIT)) {
      if (part === '<|startoftext|>') ids.push(CLIP_BOS);
      else if (part === '<|endoftext|>') ids.push(CLIP_EOS);
      else this.encode(whitespaceClean(fixText(part)).toLowerCase(), HF_PIECES, HF_SPECIALS, ids);
    }
    return ids;
  }

  /** open_clip.tokenize([text])[0]. */
  openClipIds(text: string): number[] {
    return frameChunk(this.openClipTokens(text), 0);
  }

  /** The text's ids as open_clip makes them, before framing and truncation. */
  openClipTokens(text: string): number[] {
    const basic = pythonHtmlUnescape(pythonHtmlUnescape(fixText(text))).replace(TRIM, '');
    return this.encode(whitespaceClean(basic).toLowerCase(), OPEN_CLIP_PIECES, OPEN_CLIP_SPECIALS, []);
  }

  /** Appends the BPE ids of already-cleaned text; a piece that is a special spelling maps to its id. */
  private encode(text: string, pieces: RegExp, specials: ReadonlyMap<string, number>, ids: number[]): number[] {
    for (const [piece] of text.matchAll(pieces)) {
      const special = specials.get(piece);
      if (special !== undefined) {
        ids.push(special);
        continue;
      }
      const symbols = Array.from(Buffer.from(piece, 'utf8'), (b) => this.byteChars[b]!).join('');
      for (const id of this.bpe(symbols)) ids.push(id);
    }
    return ids;
  }

  /** Greedy lowest-rank merging of one byte-symbol word, `</w>` on its last symbol. */
  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let parts = Array.from(word);
    parts[parts.length - 1] += '</w>';
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      // Merge every occurrence of the winning pair, left to right, as CLIP's loop does.
      const [a, b] = [parts[best]!, parts[best + 1]!];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else {
          merged.push(parts[i]!);
        }
      }
      parts = merged;
    }
    const ids = parts.map((p) => this.encoder.get(p)!);
    // A long-lived server sees unbounded distinct words; a bounded cache keeps the speed-up.
    if (this.cache.size >= 65536) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }
}

/** [bos] + ids + [eos], cut to 77 keeping the eos last (both libraries do), padded with `pad`. */
/** Text ids per 77-token row: the rest is start, end and padding. */
export const CLIP_CHUNK = CLIP_CONTEXT - 2;

/** One 77-token row: start, up to 75 text ids (the rest cut), end, then `pad`. */
export function frameChunk(textIds: readonly number[], pad: number): number[] {
  const ids = [CLIP_BOS, ...textIds.slice(0, CLIP_CONTEXT - 2), CLIP_EOS];
  while (ids.length < CLIP_CONTEXT) ids.push(pad);
  return ids;
}
