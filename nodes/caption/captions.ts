/**
 * What SUPIR asks LLaVA and what it does with the answer (SUPIR/utils/... LLavaAgent.gen_image_caption,
 * vicuna_v1 conversation), and how a list of captions travels over a STRING link.
 */
import { InputError } from '../api/errors.ts';
import { describe } from '../api/widgets.ts';

/** The question SUPIR puts after the image (`qs` of gen_image_caption). */
export const SUPIR_INSTRUCTION = 'Describe this image and its style in a very detailed manner.';
/** The sentence SUPIR's demo appends to the question for photographs. */
export const REALISTIC_PHOTO = 'The image is a realistic photography, not an art painting.';
/** vicuna_v1's stop string, which the official decode leaves at the end of the answer. */
const STOP = '</s>';

/** The question sent to the server. */
export function instructionText(instruction: string, realisticPhoto: boolean): string {
  const base = instruction.trim();
  if (!realisticPhoto) return base;
  return base === '' ? REALISTIC_PHOTO : `${base} ${REALISTIC_PHOTO}`;
}

/**
 * The official post-processing: strip, drop a trailing `</s>`, strip again, newlines to spaces.
 * Control characters other than whitespace are dropped too: the answer is shown and stored as
 * plain text and must not carry terminal escapes or NULs into logs and PNG text chunks.
 */
export function postProcessCaption(raw: string): string {
  let text = raw.trim();
  if (text.endsWith(STOP)) text = text.slice(0, -STOP.length);
  return text.trim().replace(/\r\n|\r|\n/g, ' ').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}

/**
 * A list of captions (one per image of a batch, or one per sampler tile) travels over a STRING
 * link as a JSON array of strings: a caption never holds a newline after post-processing, but may
 * hold any other character, and JSON keeps the list exact and readable in a Text node.
 */
export function formatCaptionList(captions: readonly string[]): string {
  return JSON.stringify(captions);
}

/** The captions of a list written by formatCaptionList (or by hand); empty text = no captions. */
export function parseCaptionList(text: string, input: string): string[] {
  if (text.trim() === '') return [];
  const wrong = (): InputError =>
    new InputError(input, `expects a JSON array of captions such as ["a red door", "a tree"] (the captions output of Caption (vision LLM)); got ${describe(text)}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw wrong();
  }
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) throw wrong();
  return value;
}
