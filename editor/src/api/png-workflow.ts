const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Inflated text is capped so that a tiny compressed chunk cannot fill the memory. */
const MAX_INFLATED = 64 * 1024 * 1024;

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * Reads the PNG text chunks (tEXt, zTXt, iTXt) in the browser; a keyword seen twice keeps its last
 * value. Damaged or unreadable chunks are skipped. Throws if the bytes are not a PNG.
 */
export async function readPngText(bytes: Uint8Array): Promise<Record<string, string>> {
  if (!isPng(bytes)) throw new Error('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = { decode: latin1Decode };
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > bytes.length) break;
    const type = latin1.decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    pos += 12 + length;
    if (type === 'IEND') break;
    if (type !== 'tEXt' && type !== 'zTXt' && type !== 'iTXt') continue;
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const key = latin1.decode(data.subarray(0, nul));
    try {
      if (type === 'tEXt') out[key] = latin1.decode(data.subarray(nul + 1));
      else if (type === 'zTXt') out[key] = latin1.decode(await inflate(data.subarray(nul + 2)));
      else {
        const compressed = data[nul + 1] === 1;
        const langEnd = data.indexOf(0, nul + 3);
        const transEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
        if (transEnd < 0) continue;
        const body = data.subarray(transEnd + 1);
        out[key] = utf8.decode(compressed ? await inflate(body) : body);
      }
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

/** True ISO-8859-1 (TextDecoder's 'latin1' is windows-1252, which differs at 0x80-0x9f). */
function latin1Decode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 0x8000) out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return out;
}
