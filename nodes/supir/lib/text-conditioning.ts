/**
 * SUPIR's text conditioning around the two compiled encoders (text-encoders.ts): the prompt
 * composition of SUPIRModel.prepare_condition, the id batches each encoder is fed, and the
 * conditioner's assembly of their outputs:
 *
 *   crossattn = cat(CLIP-L hidden, bigG hidden) on the feature axis   [N, 77, 768 + 1280]
 *   vector    = cat(bigG pooled, size embeddings)                      [N, 1280 + 3·2·256]
 */
import { StudioError } from '../../api/errors.ts';
import { sdxlVector, SDXL_SIZE_OUTDIM, type SizeCondition } from './size-embedding.ts';
import { CLIP_CHUNK, CLIP_CONTEXT, CLIP_EOS, frameChunk, type ClipTokenizer } from './tokenizer.ts';

/** SUPIR's default positive suffix (gradio_demo.py / test.py `a_prompt`, the yaml's `p_p`). */
export const SUPIR_A_PROMPT =
  'Cinematic, High Contrast, highly detailed, taken using a Canon EOS R camera, hyper detailed photo - realistic maximum detail, 32k, Color Grading, ultra HD, extreme meticulous detailing, skin pore detailing, hyper sharpness, perfect without deformations.';
/** SUPIR's default negative prompt (`n_prompt`, the yaml's `n_p`). */
export const SUPIR_N_PROMPT =
  'painting, oil painting, illustration, drawing, art, sketch, oil painting, cartoon, CG Style, 3D render, unreal engine, blurring, dirty, messy, worst quality, low quality, frames, watermark, signature, jpeg artifacts, deformed, lowres, over-smooth';

/**
 * The positive text: the official code joins caption and a_prompt with NO separator
 * ("…a catCinematic, …"); the default keeps that for parity, a caller may pass ' ' or ', '.
 */
export function positivePrompt(caption: string, aPrompt = SUPIR_A_PROMPT, separator = ''): string {
  return caption === '' ? aPrompt : `${caption}${separator}${aPrompt}`;
}

/**
 * Token rows for `texts`, `chunks` rows per text (text-major). Without `long`, one row per text,
 * cut at 75 text tokens as the official code does (`truncated` says which texts lost words). With
 * `long`, each text is split into 75-token chunks (each framed start…end), and texts with fewer
 * chunks are padded with empty-prompt rows so that every text has the same token count, as other
 * SDXL front ends do; the crossattn of a text is its rows concatenated along the token axis.
 */
export function tokenChunks(
  tokenizer: ClipTokenizer,
  texts: readonly string[],
  long: boolean,
): { clipL: BigInt64Array; bigG: BigInt64Array; chunks: number; truncated: boolean[] } {
  const raw = texts.map((t) => ({ l: tokenizer.hfTokens(t), g: tokenizer.openClipTokens(t) }));
  const truncated = raw.map((r) => Math.max(r.l.length, r.g.length) > CLIP_CHUNK);
  const count = (r: { l: number[]; g: number[] }): number => Math.max(1, Math.ceil(Math.max(r.l.length, r.g.length) / CLIP_CHUNK));
  const chunks = long ? Math.max(...raw.map(count)) : 1;
  const clipL = new BigInt64Array(texts.length * chunks * CLIP_CONTEXT);
  const bigG = new BigInt64Array(texts.length * chunks * CLIP_CONTEXT);
  raw.forEach((r, i) => {
    for (let k = 0; k < chunks; k++) {
      const at = (i * chunks + k) * CLIP_CONTEXT;
      clipL.set(frameChunk(r.l.slice(k * CLIP_CHUNK, (k + 1) * CLIP_CHUNK), CLIP_EOS).map(BigInt), at);
      bigG.set(frameChunk(r.g.slice(k * CLIP_CHUNK, (k + 1) * CLIP_CHUNK), 0).map(BigInt), at);
    }
  });
  return { clipL, bigG, chunks, truncated: long ? texts.map(() => false) : truncated };
}

/** The encoders' outputs for N texts, row-major. */
export interface TextEncoderOutputs {
  /** CLIP-L `hidden` [N, T, clipLWidth]. */
  clipL: Float32Array;
  clipLWidth: number;
  /** bigG `hidden` [N, T, bigGWidth]. */
  bigG: Float32Array;
  bigGWidth: number;
  /** bigG `pooled` [N, pooledDim]. */
  pooled: Float32Array;
  pooledDim: number;
}

export interface TextConditioning {
  /** [N, T, clipLWidth + bigGWidth] */
  crossattn: Float32Array;
  /** [N, pooledDim + 6·sizeOutdim], or [N, pooledDim] without size rows. */
  vector: Float32Array;
  rows: number;
  context: number;
}

/** cat([a, b], dim=-1) of [rows, wa] and [rows, wb] row-major blocks. */
function concatLast(a: Float32Array, wa: number, b: Float32Array, wb: number, rows: number): Float32Array {
  const out = new Float32Array(rows * (wa + wb));
  for (let r = 0; r < rows; r++) {
    out.set(a.subarray(r * wa, (r + 1) * wa), r * (wa + wb));
    out.set(b.subarray(r * wb, (r + 1) * wb), r * (wa + wb) + wa);
  }
  return out;
}

/**
 * The conditioner's `crossattn` and `vector`. `sizes` holds one SizeCondition per text
 * (SUPIR passes SUPIR_SIZE_CONDITION for all); `null` leaves the vector as the pooled part only,
 * which is what a conditioner without size embedders (the text golden case) returns.
 */
export function textConditioning(out: TextEncoderOutputs, sizes: readonly SizeCondition[] | null, sizeOutdim = SDXL_SIZE_OUTDIM): TextConditioning {
  const rows = out.pooled.length / out.pooledDim;
  const context = out.clipL.length / (rows * out.clipLWidth);
  if (!Number.isInteger(rows) || !Number.isInteger(context) || out.bigG.length !== rows * context * out.bigGWidth) {
    throw new StudioError('BAD_INPUT', `text encoder outputs disagree: ${out.clipL.length} / ${out.bigG.length} hidden values for ${out.pooled.length / out.pooledDim} pooled rows`);
  }
  if (sizes !== null && sizes.length !== rows) throw new StudioError('BAD_INPUT', `${sizes.length} size conditions for ${rows} texts`);
  const crossattn = concatLast(out.clipL, out.clipLWidth, out.bigG, out.bigGWidth, rows * context);
  const vector = sizes === null ? out.pooled.slice() : sdxlVector(out.pooled, out.pooledDim, sizes, sizeOutdim);
  return { crossattn, vector, rows, context };
}
