import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixText } from '../../nodes/supir/lib/tokenizer-ftfy.ts';
import { ftfyUnescapeHtml, pythonHtmlUnescape } from '../../nodes/supir/lib/tokenizer-html.ts';
import { CLIP_BOS, CLIP_CONTEXT, CLIP_EOS, ClipTokenizer } from '../../nodes/supir/lib/tokenizer.ts';
import { GOLDEN_DIR, loadGolden, type GoldenCase } from '../support/golden.ts';

interface PromptInfo {
  name: string;
  text: string;
  ftfy_fix_text: string;
}

let tok: ClipTokenizer;
let golden: GoldenCase;
let prompts: PromptInfo[];

beforeAll(async () => {
  tok = await ClipTokenizer.load(path.join(GOLDEN_DIR, 'tokenizer_bpe_simple_vocab_16e6.txt.gz'));
  golden = await loadGolden('tokenizer_clip');
  prompts = golden.json.prompts as PromptInfo[];
});

const row = (ids: number[], i: number): number[] => ids.slice(i * CLIP_CONTEXT, (i + 1) * CLIP_CONTEXT);

describe('CLIP BPE tokenizer (golden tokenizer_clip, 57 strings)', () => {
  it('reproduces every HF CLIPTokenizer row (CLIP-L, pad 49407)', () => {
    const want = golden.ints('ids_clip_l_hf');
    const mismatches = prompts.filter((p, i) => tok.hfIds(p.text).join() !== row(want, i).join()).map((p) => p.name);
    expect(mismatches).toEqual([]);
    expect(prompts).toHaveLength(57);
  });

  it('reproduces every open_clip.tokenize row (bigG, pad 0)', () => {
    const want = golden.ints('ids_open_clip');
    const mismatches = prompts.filter((p, i) => tok.openClipIds(p.text).join() !== row(want, i).join()).map((p) => p.name);
    expect(mismatches).toEqual([]);
  });

  it('matches the recorded ftfy.fix_text output for every string', () => {
    expect(prompts.filter((p) => fixText(p.text) !== p.ftfy_fix_text).map((p) => p.name)).toEqual([]);
  });

  it('frames, truncates and pads as each library does', () => {
    const long = 'word '.repeat(100);
    const hf = tok.hfIds(long);
    const oc = tok.openClipIds(long);
    expect(hf).toHaveLength(CLIP_CONTEXT);
    expect([hf[0], hf[76]]).toEqual([CLIP_BOS, CLIP_EOS]);
    expect(oc.slice(0, 76)).toEqual(hf.slice(0, 76));
    expect(oc[76]).toBe(CLIP_EOS);
    expect(tok.hfIds('')).toEqual([CLIP_BOS, ...Array<number>(76).fill(CLIP_EOS)]);
    expect(tok.openClipIds('')).toEqual([CLIP_BOS, CLIP_EOS, ...Array<number>(75).fill(0)]);
  });
});

describe('text clean-up helpers', () => {
  it("html.unescape follows Python's rules", () => {
    expect(pythonHtmlUnescape('&amp;amp; &lt;b&gt; &#39;x&#x27; &quot;')).toBe('&amp; <b> \'x\' "');
    expect(pythonHtmlUnescape('&ampx &notit; &copy2 &#128; &#0; &bogus;')).toBe('&x ¬it; ©2 € \ufffd &bogus;');
    expect(pythonHtmlUnescape('&eacute;t&eacute; &mdash; &hellip;')).toBe('été — …');
  });

  it("ftfy's entity rule needs ';' and decodes upper-cased names", () => {
    expect(ftfyUnescapeHtml('&amp &amp; &EACUTE; &NTILDE; &#233;')).toBe('&amp & É Ñ é');
  });

  it('fixes mojibake runs without touching real accents', () => {
    expect(fixText('cafÃ© crÃ¨me Ã©tÃ©')).toBe('café crème été');
    expect(fixText('donâ€™t')).toBe("don't");
    expect(fixText('naïve façade Ærøskøbing Straße')).toBe('naïve façade Ærøskøbing Straße');
  });

  it('skips HTML unescaping when the text has a tag, as ftfy "auto" does', () => {
    expect(fixText('<b>Tom</b> &amp; Jerry')).toBe('<b>Tom</b> &amp; Jerry');
    expect(fixText('Tom &amp; Jerry')).toBe('Tom & Jerry');
  });
});
