import { latin1, pngTextFields } from '../../../nodes/image/png-chunks.ts';
import { pngDocumentsFromText } from '../../../server/protocol/png-documents.ts';

export { isPng } from '../../../nodes/image/png-chunks.ts';

/** Inflated text is capped so that a tiny compressed chunk cannot fill the memory. */
const MAX_INFLATED = 64 * 1024 * 1024;

/**
 * Reads the PNG text chunks (tEXt, zTXt, iTXt) in the browser with the parser the server uses;
 * a keyword seen twice keeps its last value. Damaged chunks are skipped. Throws if not a PNG.
 */
export async function readPngText(bytes: Uint8Array): Promise<Record<string, string>> {
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  for (const field of pngTextFields(bytes)) {
    try {
      const body = field.compressed ? await inflate(field.body) : field.body;
      out[field.key] = field.encoding === 'utf8' ? utf8.decode(body) : latin1(body);
    } catch {
      // A damaged text chunk is skipped: the image itself is still good.
    }
  }
  return out;
}

/** The workflow JSON embedded by Save Image (the 'workflow' text chunk), parsed, or null. */
export async function readPngWorkflow(bytes: Uint8Array): Promise<unknown> {
  const text = (await readPngText(bytes)).workflow;
  return text === undefined ? null : (JSON.parse(text) as unknown);
}

/**
 * The `workflow` and `prompt` text chunks, parsed: ours (Save Image writes a workflow) or
 * ComfyUI's (a UI workflow and the API prompt that ran). Broken JSON counts as absent.
 */
export async function readPngDocuments(bytes: Uint8Array): Promise<{ workflow?: unknown; prompt?: unknown }> {
  const text = await readPngText(bytes);
  return pngDocumentsFromText(text);
}

/** zlib inflate with DecompressionStream('deflate'), capped at MAX_INFLATED bytes. */
async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'));
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_INFLATED) {
      await reader.cancel();
      throw new Error('compressed PNG text is too large');
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
