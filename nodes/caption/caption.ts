import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import type { TileRect } from '../api/sockets.ts';
import type { ImageTensor, LatentTensor } from '../api/tensor.ts';
import { boolean, combo, float, int, seed, string } from '../api/widgets.ts';
import { latentWindows } from '../supir/lib/sampler-tiles.ts';
import { formatCaptionList, instructionText, postProcessCaption, SUPIR_INSTRUCTION } from './captions.ts';
import { API_KINDS, baseUrlProblem, requestCaption, type ApiKind } from './client.ts';
import { encodeForCaption } from './image.ts';

/** Requests in flight at once when captioning tiles or a batch: Ollama serves 1-4 in parallel. */
export const CAPTION_CONCURRENCY = 2;
/** SDXL latent cell in pixels, used for tile windows when no latent is linked. */
const SDXL_CELL = 8;
/** SUPIR Sample's windows need tiles in multiples of 4 latent cells (its LATENT_MULTIPLE). */
const TILE_MULTIPLE = 4;

/**
 * SUPIR's captioning step as a client of a local vision-language server: LLaVA 1.5 13B through
 * Ollama (`llava:13b`) or any OpenAI-compatible server, with the official question, sampling
 * settings and post-processing. Deterministic for the executor: the same image and settings hit
 * the cache and send no request (the seed makes the server's sampling repeatable where it can).
 */
export default defineNode({
  id: 'CaptionVLM',
  displayName: 'Caption (vision LLM)',
  category: 'caption',
  description:
    "Describes the image with a vision-language model (LLaVA, as SUPIR does) served by Ollama or an OpenAI-compatible server (llama.cpp, vLLM, LM Studio). With tile_size > 0 it captions each of SUPIR Sample's tiles instead: link captions to SUPIR Text Encode's tile_captions. Needs a running server; without one, type the caption into SUPIR Text Encode or a Text node.",
  inputs: {
    image: { type: 'IMAGE', description: 'The image to describe: in SUPIR, the stage-1 image. A batch gives one caption per image.' },
    latent: {
      type: 'LATENT',
      optional: true,
      description: "The latent SUPIR Sample tiles (SUPIR Stage-1's control): gives the pixels per latent cell for tile windows (8 when unlinked).",
    },
  },
  widgets: {
    api: combo({ options: API_KINDS, default: 'ollama /api/generate', description: 'Which API the server speaks: Ollama (generate or chat) or OpenAI-compatible chat completions.' }),
    base_url: string({ default: 'http://127.0.0.1:11434', maxLength: 2048, description: 'The server: Ollama http://127.0.0.1:11434, llama.cpp :8080, vLLM :8000, LM Studio :1234 (http or https only).' }),
    model: string({ default: 'llava:13b', maxLength: 256, description: 'Model name as the server knows it (SUPIR uses LLaVA v1.5 13B: `llava:13b` in Ollama).' }),
    instruction: string({ default: SUPIR_INSTRUCTION, multiline: true, maxLength: 10_000, description: "The question asked about the image (SUPIR's by default)." }),
    realistic_photo: boolean({ default: false, description: 'Append "The image is a realistic photography, not an art painting." as SUPIR\'s demo does.' }),
    temperature: float({ default: 0.2, min: 0, max: 2, step: 0.05 }),
    top_p: float({ default: 0.7, min: 0, max: 1, step: 0.05 }),
    max_tokens: int({ default: 512, min: 1, max: 4096, description: 'Longest answer in tokens (max_new_tokens).' }),
    seed: seed({ default: 0 }),
    timeout: int({ default: 300, min: 1, max: 3600, description: 'Seconds one request may take, including loading the model on the first request.' }),
    stream: boolean({ default: true, description: 'Ask for the answer as it is written (progress shows on the node).' }),
    tile_size: int({ default: 0, min: 0, max: 1024, step: 8, description: "0 = one caption per image. Otherwise caption each of SUPIR Sample's tiles: set tile_size and tile_stride as on the sampler (latent cells)." }),
    tile_stride: int({ default: 64, min: 8, max: 1024, step: 8, description: "SUPIR Sample's tile_stride (latent cells), used when tile_size > 0." }),
  },
  outputs: { caption: 'STRING', captions: 'STRING' },
  // Only literal widgets are here: a linked base_url or tile size is checked when the node runs.
  validate: ({ base_url, tile_size, tile_stride }) => {
    const out: Array<[string, string]> = [];
    const url = typeof base_url === 'string' ? baseUrlProblem(base_url) : undefined;
    if (url) out.push(['base_url', url]);
    return [...out, ...tileProblems(tile_size, tile_stride)];
  },
  async execute(args, ctx) {
    const { image } = args;
    const [problem] = tileProblems(args.tile_size, args.tile_stride);
    if (problem) throw new InputError(problem[0], problem[1]);
    const rects = args.tile_size > 0 ? tileRects(image, args.latent, args.tile_size, args.tile_stride) : undefined;
    const jobs: Array<{ index: number; rect?: TileRect }> = rects ? rects.map((rect) => ({ index: 0, rect })) : Array.from({ length: image.n }, (_, index) => ({ index }));
    const instruction = instructionText(args.instruction, args.realistic_photo);
    const budget = args.max_tokens;
    const received = new Array<number>(jobs.length).fill(0);
    const report = (): void => ctx.progress(received.reduce((a, b) => a + b, 0), jobs.length * budget);
    const captions = await mapInOrder(jobs, CAPTION_CONCURRENCY, ctx.signal, async (job, i, signal) => {
      const encoded = await encodeForCaption(image, job.index, job.rect);
      const raw = await requestCaption({
        api: args.api as ApiKind,
        baseUrl: args.base_url,
        model: args.model,
        instruction,
        image: encoded,
        temperature: args.temperature,
        topP: args.top_p,
        maxTokens: args.max_tokens,
        seed: args.seed,
        stream: args.stream,
        timeoutS: args.timeout,
        signal,
        onPiece: (n) => {
          received[i] = Math.min(n, budget);
          report();
        },
      });
      received[i] = budget;
      report();
      return postProcessCaption(raw);
    });
    return { caption: captions[0] ?? '', captions: formatCaptionList(captions) };
  },
});

/** The sampler's widget rules, so that captions can only be made for windows it accepts. */
function tileProblems(tile: number, stride: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (tile > 0 && tile % TILE_MULTIPLE !== 0) out.push(['tile_size', `must be a multiple of ${TILE_MULTIPLE}, as on SUPIR Sample`]);
  if (tile > 0 && stride > tile) out.push(['tile_stride', `${stride} is larger than the tile (${tile}), which SUPIR Sample refuses`]);
  return out;
}

/**
 * SUPIR Sample's tile windows (latentWindows, row by row) in image pixels, so that the captions
 * line up one to one with the sampler's per-tile prompts.
 */
export function tileRects(image: ImageTensor, latent: LatentTensor | undefined, tile: number, stride: number): TileRect[] {
  if (image.n !== 1) {
    throw new InputError('image', `per-tile captions are made for one image, got a batch of ${image.n} (SUPIR Sample uses the same tile prompts for every image of a batch)`);
  }
  const cell = latent?.downscale ?? SDXL_CELL;
  if (latent && (latent.w * cell !== image.w || latent.h * cell !== image.h)) {
    throw new InputError('latent', `is ${latent.w}x${latent.h} cells of ${cell} px (${latent.w * cell}x${latent.h * cell} px) but the image is ${image.w}x${image.h}: link the latent made from this image (SUPIR Stage-1's control)`);
  }
  if (image.w % cell !== 0 || image.h % cell !== 0) {
    throw new InputError('image', `is ${image.w}x${image.h}; tile windows follow SUPIR Sample's latent cells of ${cell} px, so both sides must be multiples of ${cell} (link the latent for another cell size)`);
  }
  return latentWindows(image.h / cell, image.w / cell, tile, stride).map((w) => ({ x: w.x * cell, y: w.y * cell, w: w.w * cell, h: w.h * cell }));
}

/**
 * fn over every item with at most `limit` running at once; results in item order whatever order
 * they finish in. The first failure stops the others (their requests are aborted) and is thrown.
 */
export async function mapInOrder<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i, both);
      } catch (err) {
        failure ??= { err };
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
  return results;
}
