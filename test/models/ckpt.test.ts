import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkptFile } from '../../server/models/checkpoint/ckpt.ts';
import { openCheckpoint, sniffCheckpoint } from '../../server/models/checkpoint/checkpoint.ts';
import { openMerged } from '../../server/models/checkpoint/merge.ts';
import { writeSafetensors } from '../../server/models/checkpoint/safetensors-writer.ts';
import { unpickleTorch } from '../../server/models/checkpoint/torch-pickle.ts';
import { halfBitsFromFloatBits } from '../../server/runtime/fp16.ts';

// ---------------------------------------------------------------------------------------------
// A small pickle writer and zip writer that lay files out the way torch.save does (protocol 2,
// one STORED entry per storage, data aligned to 64 bytes), so the reader is tested on files built
// here byte by byte, not only on the two torch-written fixtures below.
// ---------------------------------------------------------------------------------------------

class PickleWriter {
  private readonly out: number[] = [];
  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  raw(b: Uint8Array | string): this {
    this.out.push(...(typeof b === 'string' ? Buffer.from(b, 'utf8') : b));
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(`${module}\n${name}\n`);
  }
  stackGlobal(module: string, name: string): this {
    return this.shortStr(module).shortStr(name).op(0x93);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.op(0x58).raw(n).raw(b);
  }
  shortStr(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.op(0x8c, b.length).raw(b);
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.op(0x4a).raw(b);
  }
  ints(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  mark = (): this => this.op(0x28);
  tuple = (): this => this.op(0x74);
  reduce = (): this => this.op(0x52);
  stop = (): this => this.op(0x2e);
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

interface TensorSpec {
  name: string;
  type: 'FloatStorage' | 'HalfStorage' | 'LongStorage';
  key: string;
  /** Elements in the whole storage. */
  numel: number;
  offset: number;
  shape: number[];
  stride: number[];
}

/** The pickle torch.save writes for {wrap: OrderedDict(name → tensor)} (or the bare OrderedDict). */
function torchPickle(tensors: TensorSpec[], opts: { wrap?: string; extra?: (p: PickleWriter) => void } = {}): Uint8Array {
  const p = new PickleWriter().proto(2);
  if (opts.wrap) p.op(0x7d).str(opts.wrap); // EMPTY_DICT, key
  p.global('collections', 'OrderedDict').op(0x29).reduce().mark();
  for (const t of tensors) {
    p.str(t.name).global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', t.type).str(t.key).str('cpu').int(t.numel).tuple().op(0x51); // BINPERSID
    p.int(t.offset).ints(t.shape).ints(t.stride).op(0x89); // requires_grad False
    p.global('collections', 'OrderedDict').op(0x29).reduce(); // backward hooks
    p.tuple().reduce();
  }
  opts.extra?.(p);
  p.op(0x75); // SETITEMS
  if (opts.wrap) p.op(0x73); // SETITEM
  return p.stop().bytes();
}

interface ZipOptions {
  deflate?: boolean;
  zip64?: boolean;
}

/** A zip the way PyTorch's writer makes one: STORED, data 64-byte aligned through a padding extra field. */
function zipBytes(entries: Array<[string, Uint8Array]>, opts: ZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name);
    const body = opts.deflate ? zlib.deflateRawSync(data) : Buffer.from(data);
    const pad = (64 - ((at + 30 + nameBytes.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0); // 'FB', PyTorch's padding field
    extra.writeUInt16LE(pad, 2);
    const crc = zlib.crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    local.writeUInt16LE(opts.deflate ? 8 : 0, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    cd.writeUInt16LE(opts.zip64 ? 45 : 20, 6);
    cd.writeUInt16LE(opts.deflate ? 8 : 0, 10);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt16LE(nameBytes.length, 28);
    let cdExtra = Buffer.alloc(0);
    if (opts.zip64) {
      // Force the 64-bit fields even for small values, to exercise the zip64 path.
      cd.writeUInt32LE(0xffffffff, 20);
      cd.writeUInt32LE(0xffffffff, 24);
      cd.writeUInt32LE(0xffffffff, 42);
      cdExtra = Buffer.alloc(28);
      cdExtra.writeUInt16LE(1, 0);
      cdExtra.writeUInt16LE(24, 2);
      cdExtra.writeBigUInt64LE(BigInt(data.length), 4);
      cdExtra.writeBigUInt64LE(BigInt(body.length), 12);
      cdExtra.writeBigUInt64LE(BigInt(at), 20);
    } else {
      cd.writeUInt32LE(body.length, 20);
      cd.writeUInt32LE(data.length, 24);
      cd.writeUInt32LE(at, 42);
    }
    cd.writeUInt16LE(cdExtra.length, 30);
    central.push(cd, nameBytes, cdExtra);
    parts.push(local, nameBytes, extra, body);
    at += 30 + nameBytes.length + extra.length + body.length;
  }
  const dir = Buffer.concat(central);
  const tail: Buffer[] = [dir];
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  if (opts.zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(dir.length), 40);
    rec.writeBigUInt64LE(BigInt(at), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(at + dir.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
    eocd.writeUInt16LE(0xffff, 8);
    eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12);
    eocd.writeUInt32LE(0xffffffff, 16);
  } else {
    eocd.writeUInt16LE(entries.length, 8);
    eocd.writeUInt16LE(entries.length, 10);
    eocd.writeUInt32LE(dir.length, 12);
    eocd.writeUInt32LE(at, 16);
  }
  return Buffer.concat([...parts, ...tail, eocd]);
}

let dir = '';
function tmp(name: string): string {
  return path.join(dir, name);
}

/** Writes `<file>` as a torch zip checkpoint: archive/data.pkl, archive/data/<key>, version, byteorder. */
function writeCkpt(name: string, pickle: Uint8Array, storages: Record<string, Uint8Array>, opts: ZipOptions & { byteorder?: string } = {}): string {
  const entries: Array<[string, Uint8Array]> = [['archive/data.pkl', pickle]];
  for (const [key, data] of Object.entries(storages)) entries.push([`archive/data/${key}`, data]);
  entries.push(['archive/version', Buffer.from('3\n')], ['archive/byteorder', Buffer.from(opts.byteorder ?? 'little')]);
  const file = tmp(name);
  fs.writeFileSync(file, zipBytes(entries, opts));
  return file;
}

const f32 = (...xs: number[]): Uint8Array => new Uint8Array(Float32Array.from(xs).buffer);
const f16 = (...xs: number[]): Uint8Array =>
  new Uint8Array(Uint16Array.from(xs, (x) => halfBitsFromFloatBits(new Uint32Array(Float32Array.of(x).buffer)[0]!)).buffer);

/** A state dict in the shape of SUPIR's: f32 and f16 tensors, a storage offset, one storage shared by three views. */
const SHARED = Array.from({ length: 12 }, (_, i) => i * 0.5 - 1);
const SPECS: TensorSpec[] = [
  { name: 'model.control_model.input_blocks.0.0.weight', type: 'FloatStorage', key: '0', numel: 6, offset: 0, shape: [2, 3], stride: [3, 1] },
  { name: 'model.control_model.input_blocks.0.0.bias', type: 'HalfStorage', key: '1', numel: 3, offset: 0, shape: [3], stride: [1] },
  { name: 'shared.head', type: 'FloatStorage', key: '2', numel: 12, offset: 0, shape: [2, 2], stride: [2, 1] },
  { name: 'shared.offset', type: 'FloatStorage', key: '2', numel: 12, offset: 5, shape: [4], stride: [1] },
  { name: 'shared.transposed', type: 'FloatStorage', key: '2', numel: 12, offset: 0, shape: [4, 3], stride: [1, 4] },
  { name: 'steps', type: 'LongStorage', key: '3', numel: 2, offset: 0, shape: [2], stride: [1] },
];
const STORAGES: Record<string, Uint8Array> = {
  '0': f32(1.5, -2, 3.25, 0, 1e-8, -65504),
  '1': f16(1, -0.5, 0.099975586),
  '2': f32(...SHARED),
  '3': new Uint8Array(BigInt64Array.of(7n, -3n).buffer),
};

/**
 * Made with torch 1.13.1 (Debian python3-torch), gzipped and base64'd:
 *   m = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2)); m[0].weight = [[.5,-1,2],[.25,3,-4.5]], bias [.125,-.75]
 *   sd = m.state_dict()  (an OrderedDict with _metadata, so the pickle has a BUILD)
 *   sd |= half [1,-2,.5,65504] f16, bf16 [1.5,3], base = arange(12.): view1 base[2:6], view2 base.view(3,4)[1],
 *         transposed base.view(3,4).t(), long [7,-3] int64, param nn.Parameter([.25,.5]), scalar tensor(2.5)
 *   torch.save({'state_dict': sd, 'epoch': 3, 'global_step': 2**40, 'lr': 1.5e-4, 'name': b'bytes\xff',
 *               'cfg': {'a': [1, (2, 3)], 'b': None, 'c': True}}, 'p2.ckpt')   (and pickle_protocol=4 → p4.ckpt)
 */
const TORCH_P2 =
  'H4sIAAAAAAACA62WW3PbRBTHJdtxHCVA6IUkUEpIuTilcSwncRxoczHFLai0iUpAFFojy4ptolo+0jrpBVNzSSg89YHhOmV4pO888ZIMfAGuM7' +
  'yRFz4GlL0oiqS0eNJWMztrrfb3/++ePXvGs1I4wnGxGLft6eR6uFpquKgiNVFbNHLZ3dyZ7U8z1AAurggYsJGK9HyxoiHgNc00DF1DFbNqC6es' +
  'om7pxaP4iwChQRnCcYUYJhPLeqVURhDRkGlp5US+jiqGLeQtvVCvGMU80qu2aeWXUgK0xeNKOzUxLbWkQ5QhQs4wVXSaDQrQrvBEF2JKGPdarQ' +
  '4dUhSBMCdxUkgKr0KnFJb4Vej6uEzWcR+C+2V4QInSxRQqqg3dZexUjpaZkggPljukEIJdVGEFdkv8Cuxh9F4ED8nQQ7cibm6l18enoI/xDzv8' +
  'I4Tfx/hHEeyX4THqLjL3fh89Ao8zesChDxD6CUY/ieApGZ5W8OlxZdVYgDhjnbgcx0NuWAap3CgcxHIRBM8QucgKHCJyQ0wugWBYhiSVKyyIaR' +
  'B9clkaZzHtSqao5BiMsBWOOiscI5JpJjmOICPDhNKGJy5V9GURnvVtLw3PYbgLweE5fDh4PUcIPMngKQTTMsy4cAqym3DZwZ6fkyIEO0qwFxiW' +
  'Q3BMhuM0H5GlVu2aaetFeDHIvkRDQDJCkngpsgonGP8ygpMynKJhMMxqCWZ9YTiBh9wQzNFdjIPMQnDaCcErZDnzTO5VBK/JoNBd1FRLPQ+v3y' +
  'bV6Vcd6ZYAZ3xRysAbTP9NR/8s0T/H9PMI3pJBvUpfCh+BJkOR5pOtqYZqge6TmoAFLMUjKGGpwUEmgXO2IsPb9QYsKh14Uh6vQiWXHgz6/Xxc' +
  'IdUAqg0w6Q1c0i0bX2uoSbztXDdogFV230WwG4Doe90u0L3rNVMrQ10KK534rWSYBdXI20ivwdInUVpteCVEQm7B8rGpAzcOJudTKj2EKo4KXN' +
  'DymlnUNVvQq+SHABfpUgoXkW7/tAaX6J4NFVWqIlxehXdkaLAKsFCCdxtwJU4XpkLzLLwXxwdOa8H7Oh0twAcn6Q8NPrxarydmpfbY4d4vM79i' +
  'e9Jmb1shO7jxzQo5nMxlR25VH1s9WGaK45pruJ/G/STucH9tnayieO6rP3vxB9L+bxWiuwoxlx3idupPPNeI32eZT38mBrEWfjOuXyqXPXInu/' +
  'b6N8n+p4j/tbnoHzvzH7kH/uwh/pW/BvSd+Y/evf9hbp3L3LxM/C/1Xbm+M/+xu/Zfn5qeJt4D17/+l9y3SAvvNtc7ncvynBM/coYkf0nuNnH7' +
  'Frd13DZww8vlunHrxy05Q7wuNBYmk6RwtPDqc73Gc9m9t95nuzP7n5vsIfrx7/mebjzW3UJ/wtXP5LJj3J3m7yS5w8R3cePv33Z2fhP3IH/76f' +
  'klftj3Y+vzE/B37O2U8FwW/8cQCP3LN6V5Un9DlOZJ5/LeWti5TdHzDzEIestXhw8aaOO2CmcQ81YhP/adBxODmLd4+LHe6BaWCmLeO+/HvvBg' +
  'I0HMe1UDbu1b2GgQ896ygJsHGwti3gvjx/bEtrB0EPPeAz/W9GDjQcybxn5sw4Nlgpg3A/0Y+V/hZnwQ86ae4MN+Z5iTrLNSNHrI+bI/POTO6g' +
  'r0n4dYv0vYLOxRWiNuOBN4OtYWZUwXnc/m/gcT/TaTCw0AAA==';
const TORCH_P4 =
  'H4sIAAAAAAACA62W74sbRRjHZ5PNZpNc6amUtiBS6puc2DSbu8vlQO+uW1mFFb1WCiJo2CRz2aXbbNjdXLVyeG9aq8yLQkcFpdK3vlR8JUIP/4' +
  'JqK/SdfeOfoeczkx87u0kTYjswzO7M83m+OzPP87DbZlpGSFXRWCug46i7crZlhVape9k19BfQB+NtX/7qx3Qf2KNFkg9CK8T1ltMMKSk0PdfF' +
  'zdDxOgG8veu3sI9bb7C123TpIpir5dJV7LRtMF4IPb9pl+q90HHB+vm6jxs9x23VQ9wJPL++WwGoWCTZAAytNqYkwwkgDdezwvcG07cpkcqUpJ' +
  'vdHjWVkF4wkZky0zeomTalG/QLWwblkF6kRCmXGo4VUDtXLNp5+wiRNGofNVMD5jo1peuivaoNPzYiKlMJRUsqLE+1l23L3RlaF0jhLXgV97XC' +
  'aLlPy+N0Y0erRvRRnZ+LVhU9rE7Vz+w6+KomfG6VmS8w89QEQW5eGZnb54fG8gTjfOhbnaDrBbg1gYD98DuSTDl2R7LrddrCibwNr+J+1qbvp2' +
  'v51hVqZ4Vw4lM4xD7w0UZr0/zc5E+f8xsNmpZr+QK5zkiJk0tLEdPboyRXByGLJRDl80WCKExnd7EfQE6ASsBidY/a1/ijNnzsBQ2SwV0PottM' +
  'k0Lb9RqWWw9C3KVfKjzXJJJyffrm5ss/vFK+VLGI3IFN0fNK45MQB4cs/HfalCWkZNEPaRHOlecAJlKDvkOkJr3Z65W2zax6/7mf1F8hgVnffm' +
  'ItyKEjw1pwtmzouagSwOImQvv3YNyCcQMGGG8dMN+tj759dAIWWJ/mWxv51gz9zKQq8+QGDpjmPab3dY3eZwLqDL1zI72Kob8+n964/j7b/ybT' +
  'v3VB+XM+/eVnoN9vTN/56zSeT3/l6fVfQweodvgp07928rM78+mvPrX+webWFtM+fee7f0EQyTO0MyPtqqFLaHB+7A5Z/LLY3Yd+F/oB9MfQ4X' +
  'PRIvRT0MvnmNbHezsbZVgoz9A6OdJaM/Rjk/eZHVj/c9hvzH/xZ+n4IswtzvC/PvJfM/RV9H/jd4PlMNO9/PjvB/Pd3/oziN9T/P5Kv7z42+z7' +
  'y8M6aA8KqKEjtJxn9O/fty+lYD3FaYkNI16scIUxj8IfThIUy1cuBi3IKCqHSUysQnHMFjAtiYnFI449ErBKEhNzPo69n4mw5SQmpmpCTcBWkp' +
  'iYZQk1JcJWk5iYMHHsoYBVk5iYB3FsKxtha0lMDOM4dlfAaklMjMA4dkKNsPUkJoZePobRPjYI1m1TUV4drLyUPhPFUmL8JtUf/1CHhV3hNcIZ' +
  'xK7E5zJKn1ng9n3b/wBFS2YyywsAAA==';

const TORCH_EXPECTED: Record<string, { dtype: string; shape: number[]; values: number[] }> = {
  '0.weight': { dtype: 'F32', shape: [2, 3], values: [0.5, -1, 2, 0.25, 3, -4.5] },
  '0.bias': { dtype: 'F32', shape: [2], values: [0.125, -0.75] },
  '1.weight': { dtype: 'F32', shape: [2], values: [1, 1] },
  '1.bias': { dtype: 'F32', shape: [2], values: [0, 0] },
  half: { dtype: 'F16', shape: [4], values: [1, -2, 0.5, 65504] },
  bf16: { dtype: 'BF16', shape: [2], values: [1.5, 3] },
  view1: { dtype: 'F32', shape: [4], values: [2, 3, 4, 5] },
  view2: { dtype: 'F32', shape: [4], values: [4, 5, 6, 7] },
  transposed: { dtype: 'F32', shape: [4, 3], values: [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11] },
  long: { dtype: 'I64', shape: [2], values: [] },
  param: { dtype: 'F32', shape: [2], values: [0.25, 0.5] },
  scalar: { dtype: 'F32', shape: [], values: [2.5] },
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-ckpt-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('PyTorch .ckpt reader', () => {
  it.each([
    ['protocol 2', TORCH_P2],
    ['protocol 4', TORCH_P4],
  ])('reads what torch.save wrote (%s)', async (_, b64) => {
    const file = tmp(`torch-${b64.length}.ckpt`);
    fs.writeFileSync(file, zlib.gunzipSync(Buffer.from(b64, 'base64')));
    expect(await sniffCheckpoint(file)).toBe('ckpt');
    const ck = await CkptFile.open(file);
    expect(ck.keys()).toEqual(Object.keys(TORCH_EXPECTED));
    for (const [name, want] of Object.entries(TORCH_EXPECTED)) {
      const t = ck.tensor(name);
      expect([t.dtype, t.shape], name).toEqual([want.dtype, want.shape]);
      if (want.dtype !== 'I64') expect(Array.from(await t.read()), name).toEqual(want.values);
    }
    expect(Array.from(new BigInt64Array((await ck.tensor('long').bytes()).slice().buffer))).toEqual([7n, -3n]);
    const [v1, v2, tr] = ['view1', 'view2', 'transposed'].map((n) => ck.tensor(n));
    expect(v1!.storageKey).toBe(v2!.storageKey);
    expect(tr!.storageKey).toBe(v1!.storageKey);
    expect([v1!.storageOffset, v2!.storageOffset, tr!.strides]).toEqual([2, 4, [1, 4]]);
    await expect(ck.tensor('long').read()).rejects.toThrow(/tensor 'long' is I64, not a float tensor/);
    await ck.close();
  });

  it.each<[string, ZipOptions]>([
    ['stored', {}],
    ['deflated', { deflate: true }],
    ['zip64', { zip64: true }],
  ])('reads a hand-built checkpoint exactly (%s): f32/f16, storage offset, shared and strided views', async (label, opts) => {
    const file = writeCkpt(`built-${label}.ckpt`, torchPickle(SPECS, { wrap: 'state_dict' }), STORAGES, opts);
    const ck = await openCheckpoint(file);
    expect(ck.format).toBe('ckpt');
    expect(ck.keys()).toEqual(SPECS.map((s) => s.name));
    expect(Array.from(await ck.float32('model.control_model.input_blocks.0.0.weight'))).toEqual(Array.from(new Float32Array(STORAGES['0']!.slice().buffer)));
    expect(ck.shape('model.control_model.input_blocks.0.0.weight')).toEqual([2, 3]);
    expect(ck.dtype('model.control_model.input_blocks.0.0.bias')).toBe('F16');
    expect(Array.from(await ck.float32('model.control_model.input_blocks.0.0.bias'))).toEqual([1, -0.5, 0.0999755859375]); // the f16 nearest to 0.1
    const shared = Float32Array.from(SHARED);
    expect(Array.from(await ck.float32('shared.head'))).toEqual(Array.from(shared.subarray(0, 4)));
    expect(Array.from(await ck.float32('shared.offset'))).toEqual(Array.from(shared.subarray(5, 9)));
    const transposed = [0, 1, 2, 3].flatMap((i) => [0, 1, 2].map((j) => shared[j * 4 + i]!));
    expect(Array.from(await ck.float32('shared.transposed'))).toEqual(transposed);
    expect(Array.from(new BigInt64Array((await ck.bytes('steps')).slice().buffer))).toEqual([7n, -3n]);
    expect(ck.source('shared.head')).toBe(file);
    await expect(ck.float32('nope')).rejects.toThrow(/has no tensor 'nope'/);
    await ck.close();
  });

  it('unwraps state_dict and leaves the other entries of the file alone', async () => {
    const bare = await CkptFile.open(writeCkpt('bare.ckpt', torchPickle(SPECS), STORAGES));
    const wrapped = await CkptFile.open(writeCkpt('wrapped.ckpt', torchPickle(SPECS, { wrap: 'model' }), STORAGES));
    expect(wrapped.keys()).toEqual(bare.keys());
    await Promise.all([bare.close(), wrapped.close()]);
  });
});

describe('malicious pickles are refused before anything runs', () => {
  const canary = (name: string): string => tmp(`canary-${name}`);
  /** Each payload would create its canary file if a real unpickler loaded it. */
  const PAYLOADS: Array<[string, string, (c: string) => Uint8Array]> = [
    ['GLOBAL os.system + REDUCE', 'os.system', (c) => new PickleWriter().proto(2).global('os', 'system').str(`touch ${c}`).op(0x85).reduce().stop().bytes()],
    ['GLOBAL builtins.eval', 'builtins.eval', (c) => new PickleWriter().proto(2).global('builtins', 'eval').str(`open(${JSON.stringify(c)}, 'w').close()`).op(0x85).reduce().stop().bytes()],
    ['STACK_GLOBAL posix.system', 'posix.system', (c) => new PickleWriter().proto(4).stackGlobal('posix', 'system').str(`touch ${c}`).op(0x85).reduce().stop().bytes()],
    [
      'STACK_GLOBAL subprocess.Popen',
      'subprocess.Popen',
      (c) => new PickleWriter().proto(4).stackGlobal('subprocess', 'Popen').mark().str('touch').str(c).op(0x6c).op(0x85).reduce().stop().bytes(),
    ],
    [
      'GLOBAL __builtin__.getattr',
      '__builtin__.getattr',
      (c) =>
        new PickleWriter().proto(2).global('__builtin__', 'getattr').global('builtins', '__import__').str('os').op(0x85).reduce()
          .str('system').op(0x86).reduce().str(`touch ${c}`).op(0x85).reduce().stop().bytes(),
    ],
    ['INST os.system', 'os.system \\(through the INST opcode\\)', (c) => new PickleWriter().mark().str(`touch ${c}`).op(0x69).raw('os\nsystem\n').stop().bytes()],
    ['OBJ with os.system', 'os.system', (c) => new PickleWriter().mark().global('os', 'system').str(`touch ${c}`).op(0x6f).stop().bytes()],
  ];

  it.each(PAYLOADS)('%s', (label, what, make) => {
    const c = canary(label.replace(/\W+/g, '_'));
    let caught: unknown;
    try {
      unpickleTorch(make(c), 'evil.ckpt');
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BAD_INPUT' });
    expect((caught as Error).message).toMatch(new RegExp(`^evil\\.ckpt: refused to load: the pickle asks for ${what}, which a checkpoint never needs$`));
    expect(fs.existsSync(c)).toBe(false);
  });

  it('refuses opcodes that build arbitrary objects even without a global', () => {
    const obj = new PickleWriter().mark().op(0x7d).op(0x6f).stop().bytes(); // MARK {} OBJ
    expect(() => unpickleTorch(obj, 'x.pt')).toThrow('x.pt: refused to load: the pickle uses the OBJ opcode, which a checkpoint never needs');
    const newobj = new PickleWriter().proto(2).global('collections', 'OrderedDict').op(0x29, 0x81).stop().bytes();
    expect(() => unpickleTorch(newobj, 'x.pt')).toThrow(/uses the NEWOBJ opcode/);
    const ext = new PickleWriter().proto(2).op(0x82, 1).stop().bytes();
    expect(() => unpickleTorch(ext, 'x.pt')).toThrow(/uses the EXT1 opcode/);
  });

  it('refuses a payload hidden among real tensors inside a zip checkpoint, naming the file', async () => {
    const c = canary('zip');
    const pickle = torchPickle(SPECS, { extra: (p) => p.str('evil').global('os', 'system').str(`touch ${c}`).op(0x85).reduce() });
    const file = writeCkpt('evil.ckpt', pickle, STORAGES);
    await expect(openCheckpoint(file)).rejects.toThrow(`${file}: refused to load: the pickle asks for os.system, which a checkpoint never needs`);
    expect(fs.existsSync(c)).toBe(false);
  });

  it('does not let an allowed name be used as something else', () => {
    const callStorage = new PickleWriter().proto(2).global('torch', 'FloatStorage').op(0x29).reduce().stop().bytes();
    expect(() => unpickleTorch(callStorage, 'x.pt')).toThrow(/x.pt: the checkpoint's pickle is corrupt \(it calls torch.FloatStorage\)/);
    const badPid = new PickleWriter().proto(2).str('not a storage').op(0x51).stop().bytes();
    expect(() => unpickleTorch(badPid, 'x.pt')).toThrow(/unknown persistent id/);
  });

  // Positive control: a real unpickler does run these payloads, so the canary checks above mean something.
  // python3 is on every machine of this project (Node's native-addon toolchain needs it).
  it('the payloads are live: Python\'s own pickle creates the canary', () => {
    for (const [label, , make] of PAYLOADS) {
      const c = canary(`python-${label.replace(/\W+/g, '_')}`);
      const file = tmp('payload.pkl');
      fs.writeFileSync(file, make(c));
      try {
        execFileSync('python3', ['-c', 'import pickle,sys; pickle.loads(open(sys.argv[1], "rb").read())', file], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // Some payloads raise after their side effect (OBJ on a function): the file is what counts.
      }
      for (let i = 0; i < 50 && !fs.existsSync(c); i++) execFileSync('sleep', ['0.05']); // Popen runs async
      expect(fs.existsSync(c), label).toBe(true);
    }
  });
});

describe('damaged checkpoints fail with a message that names the file', () => {
  it('truncated zips', async () => {
    const whole = fs.readFileSync(writeCkpt('whole.ckpt', torchPickle(SPECS), STORAGES));
    const cut = tmp('cut.ckpt');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(openCheckpoint(cut)).rejects.toThrow(`${cut} is not a readable zip checkpoint: no end-of-central-directory record`);
    fs.writeFileSync(cut, whole.subarray(0, whole.length - 10));
    await expect(openCheckpoint(cut)).rejects.toThrow(cut);
    // The directory survives but the data before it is gone: a file cut out of the middle.
    const hole = Buffer.concat([whole.subarray(0, 200), whole.subarray(whole.length - 800)]);
    fs.writeFileSync(cut, hole);
    await expect(openCheckpoint(cut)).rejects.toThrow(new RegExp(`${cut.replace(/[.\\/]/g, '\\$&')}`));
  });

  it('a damaged storage is caught by its CRC when read', async () => {
    const bytes = zipBytes([
      ['archive/data.pkl', torchPickle(SPECS)],
      ...Object.entries(STORAGES).map(([k, v]): [string, Uint8Array] => [`archive/data/${k}`, v]),
    ]);
    const at = bytes.indexOf(Buffer.from(STORAGES['2']!));
    bytes[at + 3]! ^= 0x40;
    const file = tmp('flipped.ckpt');
    fs.writeFileSync(file, bytes);
    const ck = await openCheckpoint(file);
    await expect(ck.float32('shared.head')).resolves.toHaveLength(4); // a partial read has no CRC to check
    await expect(ck.float32('shared.transposed')).rejects.toThrow(`${file}: entry 'archive/data/2' fails its CRC check`);
    await ck.close();
  });

  it('corrupt and truncated pickles', async () => {
    const garbage = writeCkpt('garbage.ckpt', Uint8Array.from([0x80, 0x02, 0xff, 0x00]), STORAGES);
    await expect(openCheckpoint(garbage)).rejects.toThrow(`${garbage}: the checkpoint's pickle is corrupt (unknown opcode 0xff at byte 2)`);
    const full = torchPickle(SPECS);
    const short = writeCkpt('short.ckpt', full.subarray(0, full.length - 40), STORAGES);
    await expect(openCheckpoint(short)).rejects.toThrow(new RegExp(`short.ckpt: the checkpoint's pickle is corrupt`));
    const noStop = writeCkpt('nostop.ckpt', full.subarray(0, full.length - 1), STORAGES);
    await expect(openCheckpoint(noStop)).rejects.toThrow(/nostop.ckpt: the checkpoint's pickle is corrupt \(it ends without a STOP opcode/);
    const notDict = writeCkpt('list.ckpt', new PickleWriter().proto(2).op(0x5d).stop().bytes(), {});
    await expect(openCheckpoint(notDict)).rejects.toThrow(/list.ckpt holds a tuple\/list, not a state dict of tensors/);
    const empty = writeCkpt('empty.ckpt', new PickleWriter().proto(2).op(0x7d).str('epoch').int(3).op(0x73).stop().bytes(), {});
    await expect(openCheckpoint(empty)).rejects.toThrow(/empty.ckpt holds no tensors where a state dict should be \(keys: epoch\)/);
  });

  it('random damage to the pickle or the zip gives a StudioError or a readable file, never a crash', async () => {
    let seed = 12345;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const pickle = torchPickle(SPECS, { wrap: 'state_dict' });
    for (let i = 0; i < 2000; i++) {
      const bad = pickle.slice();
      for (let j = 0; j <= rand(3); j++) bad[rand(bad.length)] = rand(256);
      try {
        unpickleTorch(bad, 'fuzz.ckpt');
      } catch (err) {
        expect(err, `mutation ${i}`).toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/^fuzz\.ckpt: /) });
      }
    }
    const whole = fs.readFileSync(writeCkpt('fuzz.ckpt', pickle, STORAGES));
    const file = tmp('fuzzed.ckpt');
    for (let i = 0; i < 200; i++) {
      const bad = Buffer.from(whole);
      for (let j = 0; j <= rand(4); j++) bad[rand(bad.length)] = rand(256);
      fs.writeFileSync(file, i % 2 ? bad : bad.subarray(0, rand(bad.length)));
      try {
        const ck = await openCheckpoint(file);
        for (const k of ck.keys()) await ck.bytes(k).catch((err: unknown) => expect(err).toMatchObject({ code: 'BAD_INPUT' }));
        await ck.close();
      } catch (err) {
        expect(err, `zip mutation ${i}`).toMatchObject({ code: 'BAD_INPUT' });
      }
    }
    // A huge APPENDS batch and a self-containing tuple used as a dict key: data, not crashes.
    const appends = new PickleWriter().proto(2).op(0x5d).mark();
    for (let i = 0; i < 300_000; i++) appends.op(0x4e);
    expect(unpickleTorch(appends.op(0x65).stop().bytes(), 'x.pt')).toHaveLength(300_000);
    const cyclic = new PickleWriter().proto(2).op(0x7d).op(0x5d).op(0x71, 0).op(0x68, 0).op(0x61).op(0x4e).op(0x73).stop().bytes();
    expect(() => unpickleTorch(cyclic, 'x.pt')).toThrow(/x.pt: the checkpoint's pickle is corrupt \(.*circular/i);
  });

  it('missing or short storages and views past their storage', async () => {
    const { ['2']: _, ...without } = STORAGES;
    const missing = writeCkpt('missing.ckpt', torchPickle(SPECS), without);
    await expect(openCheckpoint(missing)).rejects.toThrow(`${missing}: tensor 'shared.head' needs storage data/2, which the zip does not hold (incomplete file?)`);
    const short = writeCkpt('shortstorage.ckpt', torchPickle(SPECS), { ...STORAGES, '2': STORAGES['2']!.subarray(0, 40) });
    await expect(openCheckpoint(short)).rejects.toThrow(`${short}: storage data/2 holds 40 bytes, its 12 F32 elements need 48`);
    const past = [{ ...SPECS[3]!, offset: 10 }];
    const over = writeCkpt('past.ckpt', torchPickle(past), STORAGES);
    await expect(openCheckpoint(over)).rejects.toThrow(`${over}: tensor 'shared.offset' [4] at offset 10 reaches past its storage of 12 elements`);
  });

  it('zips that are not torch checkpoints, big-endian files and old pickle files', async () => {
    const plain = tmp('plain.zip');
    fs.writeFileSync(plain, zipBytes([['readme.txt', Buffer.from('hello')]]));
    await expect(openCheckpoint(plain)).rejects.toThrow(`${plain} is a zip but not a PyTorch checkpoint (no <archive>/data.pkl)`);
    const big = writeCkpt('big.ckpt', torchPickle(SPECS), STORAGES, { byteorder: 'big' });
    await expect(openCheckpoint(big)).rejects.toThrow(/big.ckpt was saved on a big-endian machine/);
    // The first bytes of a torch 1.13 `_use_new_zipfile_serialization=False` file: pickled magic number.
    const legacy = tmp('legacy.ckpt');
    fs.writeFileSync(legacy, Buffer.from('80028a0a6cfc9c46f9206aa850192e80024de9032e80027d710028581000000070726f746f636f6c', 'hex'));
    expect(await sniffCheckpoint(legacy)).toBe('legacy-pickle');
    await expect(openCheckpoint(legacy)).rejects.toThrow(`${legacy} is a PyTorch checkpoint in the legacy (pre-1.6, non-zip) format, which is not supported`);
  });
});

describe('a .ckpt SUPIR delta over a safetensors SDXL base', () => {
  it('merges across formats, the fp16 .ckpt keys overriding the base', async () => {
    const delta: TensorSpec[] = [
      { name: 'model.control_model.input_blocks.0.0.weight', type: 'HalfStorage', key: '0', numel: 4, offset: 0, shape: [2, 2], stride: [2, 1] },
      { name: 'model.diffusion_model.project_modules.0.zero_mul.weight', type: 'HalfStorage', key: '0', numel: 4, offset: 2, shape: [2], stride: [1] },
      { name: 'first_stage_model.denoise_encoder.conv_in.weight', type: 'FloatStorage', key: '1', numel: 1, offset: 0, shape: [1], stride: [1] },
      { name: 'model.diffusion_model.out.2.bias', type: 'FloatStorage', key: '2', numel: 2, offset: 0, shape: [2], stride: [1] },
    ];
    const supir = writeCkpt('supir-delta.ckpt', torchPickle(delta, { wrap: 'state_dict' }), { '0': f16(1, 2, 3, 4), '1': f32(9), '2': f32(-1, -2) });
    const sdxl = tmp('sdxl-base.safetensors');
    await writeSafetensors(sdxl, [
      { name: 'model.diffusion_model.out.2.bias', dtype: 'F32', shape: [2], data: f32(5, 6) },
      { name: 'model.diffusion_model.out.2.weight', dtype: 'F32', shape: [2], data: f32(7, 8) },
      { name: 'conditioner.embedders.1.model.ln_final.weight', dtype: 'F16', shape: [1], data: f16(0.5) },
    ]);
    const required = [...delta.map((d) => d.name), 'model.diffusion_model.out.2.weight', 'conditioner.embedders.1.model.ln_final.weight'];
    const merged = await openMerged(supir, sdxl, { required });
    expect(merged.keys().sort()).toEqual([...required].sort());
    expect(Array.from(await merged.float32('model.diffusion_model.out.2.bias'))).toEqual([-1, -2]);
    expect(merged.source('model.diffusion_model.out.2.bias')).toBe(supir);
    expect(Array.from(await merged.float32('model.diffusion_model.out.2.weight'))).toEqual([7, 8]);
    expect(Array.from(await merged.float32('model.diffusion_model.project_modules.0.zero_mul.weight'))).toEqual([3, 4]);
    expect(merged.dtype('model.control_model.input_blocks.0.0.weight')).toBe('F16');
    await merged.close();
    await expect(openMerged(sdxl, supir, { required })).rejects.toThrow(/the checkpoints look swapped/);
  });
});
