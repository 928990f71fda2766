import type { EngineEvent } from '../engine/index.ts';
import { BINARY_KIND_PREVIEW, type PreviewEvent, type PreviewHeader } from '../protocol/frames.ts';

export { decodePreviewFrame, decodeServerMessage, BINARY_KIND_PREVIEW, type PreviewEvent, type PreviewHeader, type ServerMessage, type TextMessage } from '../protocol/frames.ts';

/** The server side of the wire format described in `server/protocol/frames.ts`. */
export function encodePreviewFrame(event: PreviewEvent): Buffer {
  const header: PreviewHeader = {
    prompt_id: event.prompt_id,
    node_id: event.node_id,
    format: event.format,
    width: event.width,
    height: event.height,
    ...(event.step === undefined ? {} : { step: event.step }),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const frame = Buffer.allocUnsafe(8 + json.length + event.bytes.length);
  frame.writeUInt32BE(BINARY_KIND_PREVIEW, 0);
  frame.writeUInt32BE(json.length, 4);
  json.copy(frame, 8);
  frame.set(event.bytes, 8 + json.length);
  return frame;
}

/** What to send for an event: JSON text, or the binary preview frame. */
export function encodeServerMessage(event: EngineEvent): { data: string | Buffer; binary: boolean } {
  if (event.type === 'preview') return { data: encodePreviewFrame(event), binary: true };
  return { data: JSON.stringify(event), binary: false };
}

