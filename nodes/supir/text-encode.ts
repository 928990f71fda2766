import { defineNode } from '../api/define.ts';
import { StudioError } from '../api/errors.ts';
import type { Conditioning } from '../api/sockets.ts';
import { boolean, combo, string } from '../api/widgets.ts';
import { parseCaptionList } from '../caption/captions.ts';
import { COMPONENT, componentOutput, type ComponentFeeds } from './lib/pack-contract.ts';
import type { PackManifest } from './lib/pack-manifest.ts';
import { openComponent, packOf, packTokenizer } from './lib/pack-session.ts';
import { SDXL_SIZE_OUTDIM, SUPIR_SIZE_CONDITION } from './lib/size-embedding.ts';
import { positivePrompt, SUPIR_A_PROMPT, SUPIR_N_PROMPT, textConditioning, tokenChunks } from './lib/text-conditioning.ts';

/** How caption and a_prompt are joined; the official code uses none ("…a catCinematic, …"). */
const SEPARATORS = { none: '', space: ' ', comma: ', ' } as const;

/**
 * The size embedders' width, from the UNet's `y` width: adm_in = pooled + 6·outdim (2816 =
 * 1280 + 6·256 for SDXL; the tiny test model has 128 = 32 + 6·16).
 */
export function sizeOutdim(manifest: PackManifest): number {
  const arch = manifest.architecture as { unet?: { admInChannels?: number }; clip_bigg?: { pooledDim?: number } };
  const adm = arch.unet?.admInChannels;
  const pooled = arch.clip_bigg?.pooledDim;
  if (adm === undefined || pooled === undefined) return SDXL_SIZE_OUTDIM;
  const outdim = (adm - pooled) / 6;
  if (!Number.isInteger(outdim) || outdim <= 0) {
    throw new StudioError('BAD_INPUT', `model pack: the UNet's vector width ${adm} does not fit bigG's pooled width ${pooled} plus 6 size embeddings`);
  }
  return outdim;
}

/**
 * SUPIR's prepare_condition: positive = caption + a_prompt, negative = n_prompt, both through
 * CLIP-L and OpenCLIP bigG, crossattn = both penultimate states side by side, vector = bigG pooled
 * + the fixed 1024² size embeddings. Like the official code, each encoder reads at most 75
 * tokens of a text (about 50-60 words): the rest is cut off without notice.
 */
export default defineNode({
  id: 'TextEncodeSDXL',
  displayName: 'SUPIR Text Encode',
  category: 'supir',
  description:
    "SDXL text conditioning as SUPIR builds it: positive = caption + a_prompt, negative = n_prompt; with tile_captions linked, one positive per sampler tile. Each text is cut at 75 tokens (about 50-60 words), as in the official code, with a warning; long_prompts encodes longer texts in 75-token chunks instead.",
  inputs: {
    model: { type: 'SUPIR_MODEL' },
    tile_captions: {
      type: 'STRING',
      optional: true,
      description:
        "One caption per SUPIR Sample tile, as a JSON array (Caption (vision LLM)'s captions output with the sampler's tile_size and tile_stride): each tile's positive prompt is its caption + a_prompt. Used by tiled sampling only.",
    },
  },
  widgets: {
    caption: string({ default: '', multiline: true, description: 'A description of the image; empty = no caption. Link a Caption (vision LLM) or Text node here to fill it.' }),
    a_prompt: string({ default: SUPIR_A_PROMPT, multiline: true, description: 'Appended to the caption: quality words.' }),
    n_prompt: string({ default: SUPIR_N_PROMPT, multiline: true, description: 'What the result should not look like.' }),
    separator: combo({ options: Object.keys(SEPARATORS), default: 'none', description: 'Between caption and a_prompt; the official code uses none.' }),
    long_prompts: boolean({ default: false, description: 'Encode texts over 75 tokens in 75-token chunks (concatenated) instead of cutting them; off = the official behaviour.' }),
  },
  outputs: { positive: 'CONDITIONING', negative: 'CONDITIONING' },
  async execute({ model, caption, tile_captions, a_prompt, n_prompt, separator, long_prompts }, ctx) {
    const manifest = packOf(model);
    const tokenizer = await packTokenizer(model, manifest);
    const sep = SEPARATORS[separator as keyof typeof SEPARATORS] ?? '';
    const tiles = tile_captions === undefined ? [] : parseCaptionList(tile_captions, 'tile_captions');
    // One batch through the encoders: positive, negative, then each tile's positive.
    const texts = [positivePrompt(caption, a_prompt, sep), n_prompt, ...tiles.map((c) => positivePrompt(c, a_prompt, sep))];
    const ids = tokenChunks(tokenizer, texts, long_prompts);
    ids.truncated.slice(0, 2).forEach((cut, i) => {
      if (cut) ctx.warn(`the ${i === 0 ? 'positive prompt (caption + a_prompt)' : 'negative prompt'} is longer than 75 tokens and was cut; turn on long_prompts to keep all of it`);
    });
    const cutTiles = ids.truncated.slice(2).filter(Boolean).length;
    if (cutTiles > 0) ctx.warn(`${cutTiles} of the ${tiles.length} tile prompts (tile caption + a_prompt) are longer than 75 tokens and were cut; turn on long_prompts to keep all of them`);
    const rows = texts.length * ids.chunks;
    const dims = [rows, ids.clipL.length / rows];
    const opts = { signal: ctx.signal };
    const clipLFeeds: ComponentFeeds<typeof COMPONENT.clipL> = { ids: { data: ids.clipL, dims } };
    const clipL = componentOutput(COMPONENT.clipL, await (await openComponent(ctx.env, model, COMPONENT.clipL, manifest)).run(clipLFeeds, opts), 'hidden');
    ctx.progress(1, 2);
    const bigGFeeds: ComponentFeeds<typeof COMPONENT.clipBigG> = { ids: { data: ids.bigG, dims } };
    const bigGOuts = await (await openComponent(ctx.env, model, COMPONENT.clipBigG, manifest)).run(bigGFeeds, opts);
    const bigG = componentOutput(COMPONENT.clipBigG, bigGOuts, 'hidden');
    const pooled = componentOutput(COMPONENT.clipBigG, bigGOuts, 'pooled');
    ctx.progress(2, 2);
    const cond = textConditioning(
      { clipL: clipL.data, clipLWidth: clipL.dims[2]!, bigG: bigG.data, bigGWidth: bigG.dims[2]!, pooled: pooled.data, pooledDim: pooled.dims[1]! },
      Array.from({ length: rows }, () => SUPIR_SIZE_CONDITION),
      sizeOutdim(manifest),
    );
    // A text's chunks are consecutive rows, so its crossattn is one contiguous [chunks·77, width]
    // block; its vector (pooled text + sizes) is that of its first chunk.
    const row = (i: number): Conditioning => {
      const ca = (cond.crossattn.length / cond.rows) * ids.chunks;
      const vec = cond.vector.length / cond.rows;
      const first = i * ids.chunks;
      return {
        crossattn: { data: cond.crossattn.slice(i * ca, (i + 1) * ca), shape: [1, cond.context * ids.chunks, ca / (cond.context * ids.chunks)] },
        vector: { data: cond.vector.slice(first * vec, (first + 1) * vec), shape: [1, vec] },
      };
    };
    const positive = row(0);
    if (tiles.length > 0) positive.perTile = tiles.map((_, j) => row(2 + j));
    return { positive, negative: row(1) };
  },
});
