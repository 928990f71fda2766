import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';

const GOLDEN = path.resolve(import.meta.dirname, '../../../shared/golden');

function write(header: Record<string, unknown>, data: Uint8Array): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'supir-st-')), 'x.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
  return file;
}

describe('safetensors reader', () => {
  it('reads F32, F16, BF16 and I64 tensors', async () => {
    const f32 = Buffer.from(Float32Array.of(1.5, -2).buffer);
    const f16 = Buffer.from(Uint16Array.of(0x3c00, 0xc000).buffer); // 1, -2
    const bf16 = Buffer.from(Uint16Array.of(0x3fc0, 0x4040).buffer); // 1.5, 3
    const i64 = Buffer.from(BigInt64Array.of(7n, -3n).buffer);
    const file = write(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
        c: { dtype: 'BF16', shape: [1, 2], data_offsets: [12, 16] },
        d: { dtype: 'I64', shape: [2], data_offsets: [16, 32] },
      },
      Buffer.concat([f32, f16, bf16, i64]),
    );
    const st = await SafetensorsFile.open(file);
    expect(st.keys()).toEqual(['a', 'b', 'c', 'd']);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(Array.from(await st.float32('a'))).toEqual([1.5, -2]);
    expect(Array.from(await st.float32('b'))).toEqual([1, -2]);
    expect(Array.from(await st.float32('c'))).toEqual([1.5, 3]);
    expect(await st.ints('d')).toEqual([7, -3]);
    await expect(st.float32('d')).rejects.toThrow(/I64, not a float tensor/);
    await expect(st.float32('nope')).rejects.toThrow(/has no tensor 'nope'/);
    await st.close();
  });

  it('refuses truncated files, bad headers and inconsistent sizes, naming the file and tensor', async () => {
    const file = write({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8));
    await expect(SafetensorsFile.open(file)).rejects.toThrow(/tensor 'w' runs past the end of the file/);
    const wrong = write({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, Buffer.alloc(16));
    await expect(SafetensorsFile.open(wrong)).rejects.toThrow(/tensor 'w' spans 16 bytes/);
    const junk = path.join(path.dirname(file), 'junk.safetensors');
    fs.writeFileSync(junk, Buffer.from('\xff\xff\xff\xff\xff\xff\xff\x00garbage'));
    await expect(SafetensorsFile.open(junk)).rejects.toThrow(/junk.safetensors is not a valid safetensors file/);
    await expect(SafetensorsFile.open(path.join(path.dirname(file), 'missing.safetensors'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reads the golden SUPIR weights with their real key names', async () => {
    const st = await SafetensorsFile.open(path.join(GOLDEN, 'supir_tiny_model.safetensors'));
    expect(st.has('model.diffusion_model.input_blocks.0.0.weight')).toBe(true);
    expect(st.entry('model.diffusion_model.input_blocks.0.0.weight').shape).toEqual([32, 4, 3, 3]);
    expect((await st.float32('model.diffusion_model.input_blocks.0.0.weight')).length).toBe(32 * 4 * 9);
    await st.close();
  });
});
