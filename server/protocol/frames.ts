import type { EngineEvent } from './events.ts';

/**
 * The websocket wire format.
 *
 * Text frames carry one JSON `EngineEvent` each, exactly as the engine emits it (`type` tags it).
 * Previews are images, so they go as binary frames instead of base64 in JSON:
 *
 *   offset 0  uint32 BE  message kind (1 = preview image)
 *   offset 4  uint32 BE  header length H in bytes
 *   offset 8  H bytes    UTF-8 JSON {prompt_id, node_id, format, width, height, step?}
 *   offset 8+H           the encoded image (JPEG or PNG, as `format` says)
 *
 * A leading kind word lets later binary messages be added without breaking old clients: a client
 * skips kinds it does not know.
 */
export const BINARY_KIND_PREVIEW = 1;

export type PreviewEvent = Extract<EngineEvent, { type: 'preview' }>;
export type PreviewHeader = Omit<PreviewEvent, 'type' | 'bytes'>;

/** Everything a client can receive, once decoded (previews included, with their bytes). */
export type ServerMessage = EngineEvent;
/** The messages that travel as text frames. */
export type TextMessage = Exclude<EngineEvent, { type: 'preview' }>;

/** A frame's header is tiny; a larger claim means a corrupt or hostile frame. */
const MAX_HEADER_BYTES = 64 * 1024;

/** Decodes a binary frame made by `encodePreviewFrame`; throws on anything else. */
export function decodePreviewFrame(frame: Uint8Array): PreviewEvent {
  if (frame.length < 8) throw new Error(`binary frame of ${frame.length} bytes is too short`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const kind = view.getUint32(0);
  if (kind !== BINARY_KIND_PREVIEW) throw new Error(`unknown binary message kind ${kind}`);
  const headerLength = view.getUint32(4);
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > frame.length) {
    throw new Error(`binary frame header length ${headerLength} does not fit the frame`);
  }
  const header = JSON.parse(new TextDecoder().decode(frame.subarray(8, 8 + headerLength))) as Partial<PreviewHeader>;
  const { prompt_id, node_id, format, width, height, step } = header;
  if (
    typeof prompt_id !== 'string' ||
    typeof node_id !== 'string' ||
    (format !== 'jpeg' && format !== 'png') ||
    typeof width !== 'number' ||
    typeof height !== 'number'
  ) {
    throw new Error('preview frame header is missing fields');
  }
  const bytes = new Uint8Array(frame.subarray(8 + headerLength));
  return { type: 'preview', prompt_id, node_id, format, width, height, ...(typeof step === 'number' ? { step } : {}), bytes };
}

/** The client side: turns a received frame back into the event. */
export function decodeServerMessage(data: Uint8Array | string, isBinary: boolean): ServerMessage {
  if (isBinary && typeof data !== 'string') return decodePreviewFrame(data);
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  const message = JSON.parse(text) as TextMessage;
  if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
    throw new Error('text frame is not an event');
  }
  return message;
}
