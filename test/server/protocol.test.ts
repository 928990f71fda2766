import { describe, expect, it } from 'vitest';
import {
  BINARY_KIND_PREVIEW,
  decodePreviewFrame,
  decodeServerMessage,
  encodePreviewFrame,
  encodeServerMessage,
  type PreviewEvent,
} from '../../server/ws/protocol.ts';

const preview: PreviewEvent = {
  type: 'preview',
  prompt_id: 'p-ü',
  node_id: '7',
  format: 'jpeg',
  width: 3,
  height: 2,
  bytes: Uint8Array.of(0xff, 0xd8, 1, 2, 3),
};

describe('websocket wire format', () => {
  it('lays out a preview frame as kind, header length, JSON header, image bytes', () => {
    const frame = encodePreviewFrame(preview);
    expect(frame.readUInt32BE(0)).toBe(BINARY_KIND_PREVIEW);
    const headerLength = frame.readUInt32BE(4);
    const header = JSON.parse(frame.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header).toEqual({ prompt_id: 'p-ü', node_id: '7', format: 'jpeg', width: 3, height: 2 });
    expect([...frame.subarray(8 + headerLength)]).toEqual([0xff, 0xd8, 1, 2, 3]);
  });

  it('round-trips previews and text events', () => {
    expect(decodePreviewFrame(encodePreviewFrame(preview))).toEqual({ ...preview, bytes: Uint8Array.from(preview.bytes) });
    const done = { type: 'prompt_done', prompt_id: 'x', status: 'success', ms: 5 } as const;
    const encoded = encodeServerMessage(done);
    expect(encoded).toEqual({ data: JSON.stringify(done), binary: false });
    expect(decodeServerMessage(encoded.data as string, false)).toEqual(done);
    expect(decodeServerMessage(Buffer.from(JSON.stringify(done)), false)).toEqual(done);
    const bin = encodeServerMessage(preview);
    expect(bin.binary).toBe(true);
    expect(decodeServerMessage(bin.data as Buffer, true)).toMatchObject({ type: 'preview', node_id: '7' });
  });

  it('rejects malformed frames', () => {
    const good = encodePreviewFrame(preview);
    expect(() => decodePreviewFrame(good.subarray(0, 6))).toThrow(/too short/);
    const otherKind = Buffer.from(good);
    otherKind.writeUInt32BE(9, 0);
    expect(() => decodePreviewFrame(otherKind)).toThrow(/kind 9/);
    const lying = Buffer.from(good);
    lying.writeUInt32BE(1_000_000, 4);
    expect(() => decodePreviewFrame(lying)).toThrow(/does not fit/);
    expect(() => decodeServerMessage('42', false)).toThrow(/not an event/);
  });
});
