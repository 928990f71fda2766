/**
 * A minimal zip reader for PyTorch checkpoints. Only the central directory is read up front; entry
 * data is read from the file by offset on demand, so a multi-gigabyte .ckpt is never held in memory.
 * PyTorch writes its zips STORED (uncompressed, 64-byte aligned) and uses zip64 past 4 GB; DEFLATE is
 * accepted too because re-zipped checkpoints exist. Every size and offset is checked against the file.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { StudioError } from '../../../nodes/api/errors.ts';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header; the data offset needs that header's own name/extra lengths. */
  headerOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** The EOCD record is 22 bytes plus a comment of at most 65535 bytes. */
const EOCD_SEARCH = 22 + 0xffff;
/** A central directory over 256 MB is not a checkpoint's (a real SDXL one is well under 1 MB). */
const MAX_DIRECTORY = 256 * 1024 * 1024;

export class ZipFile {
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly path: string,
    private readonly handle: fs.promises.FileHandle,
    readonly size: number,
    readonly entries: Map<string, ZipEntry>,
  ) {}

  /** Opens the zip at `file` through an already open handle (the caller owns and closes it). */
  static async open(file: string, handle: fs.promises.FileHandle): Promise<ZipFile> {
    try {
      return await ZipFile.parse(file, handle);
    } catch (err) {
      // Every field is range-checked, but a damaged directory must never surface as a RangeError.
      if (err instanceof StudioError) throw err;
      throw new StudioError('BAD_INPUT', `${file} is not a readable zip checkpoint: ${(err as Error).message}`);
    }
  }

  private static async parse(file: string, handle: fs.promises.FileHandle): Promise<ZipFile> {
    const { size } = await handle.stat();
    const bad = (why: string): StudioError => new StudioError('BAD_INPUT', `${file} is not a readable zip checkpoint: ${why}`);
    const tailLength = Math.min(size, EOCD_SEARCH);
    const tail = await readAt(handle, size - tailLength, tailLength, file);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        at = i;
        break;
      }
    }
    if (at < 0) throw bad('no end-of-central-directory record (the file is truncated or not a zip)');
    let count = tail.readUInt16LE(at + 10);
    let dirSize = tail.readUInt32LE(at + 12);
    let dirOffset = tail.readUInt32LE(at + 16);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      // zip64: the real values live in the zip64 EOCD record, found through the locator just before.
      if (at < 20 || tail.readUInt32LE(at - 20) !== EOCD64_LOCATOR) throw bad('zip64 locator missing');
      const rec64 = Number(tail.readBigUInt64LE(at - 20 + 8));
      if (rec64 + 56 > size) throw bad('zip64 record past the end of the file (truncated?)');
      const rec = await readAt(handle, rec64, 56, file);
      if (rec.readUInt32LE(0) !== EOCD64) throw bad('bad zip64 end-of-central-directory record');
      count = Number(rec.readBigUInt64LE(32));
      dirSize = Number(rec.readBigUInt64LE(40));
      dirOffset = Number(rec.readBigUInt64LE(48));
    }
    if (dirSize > MAX_DIRECTORY || dirOffset + dirSize > size) throw bad('the central directory lies past the end of the file (truncated?)');
    const dir = await readAt(handle, dirOffset, dirSize, file);
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL) throw bad(`central directory entry ${i} is damaged`);
      const flags = dir.readUInt16LE(p + 8);
      const nameLength = dir.readUInt16LE(p + 28);
      const extraLength = dir.readUInt16LE(p + 30);
      const commentLength = dir.readUInt16LE(p + 32);
      if (p + 46 + nameLength + extraLength + commentLength > dir.length) throw bad(`central directory entry ${i} is damaged`);
      const name = dir.toString('utf8', p + 46, p + 46 + nameLength);
      const entry: ZipEntry = {
        name,
        method: dir.readUInt16LE(p + 10),
        crc32: dir.readUInt32LE(p + 16),
        compressedSize: dir.readUInt32LE(p + 20),
        size: dir.readUInt32LE(p + 24),
        headerOffset: dir.readUInt32LE(p + 42),
      };
      readZip64Extra(entry, dir.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength));
      if (![entry.size, entry.compressedSize, entry.headerOffset].every(Number.isSafeInteger)) throw bad(`entry '${name}' has a damaged zip64 field`);
      if (flags & 1) throw bad(`entry '${name}' is encrypted`);
      if (entry.method !== 0 && entry.method !== 8) throw bad(`entry '${name}' uses compression method ${entry.method}`);
      if (entry.method === 0 && entry.compressedSize !== entry.size) throw bad(`stored entry '${name}' has inconsistent sizes`);
      if (entry.headerOffset + 30 + entry.compressedSize > size) throw bad(`entry '${name}' runs past the end of the file (truncated?)`);
      entries.set(name, entry);
      p += 46 + nameLength + extraLength + commentLength;
    }
    return new ZipFile(file, handle, size, entries);
  }

  /**
   * `length` bytes of an entry's uncompressed data from `start`. Stored entries are read in place; a
   * deflated one is inflated whole (PyTorch never writes those, so they are small or rare). A read that
   * covers the whole entry is checked against its CRC, which catches a damaged download. The result
   * owns its ArrayBuffer exactly (offset 0, no pool), so `.buffer` is safe to reinterpret.
   */
  async read(name: string, start = 0, length?: number): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new StudioError('BAD_INPUT', `${this.path}: the zip has no entry '${name}'`);
    const n = length ?? e.size - start;
    if (start < 0 || n < 0 || start + n > e.size) throw new StudioError('BAD_INPUT', `${this.path}: read of ${n} bytes at ${start} is outside entry '${name}' (${e.size} bytes)`);
    const at = await this.dataOffset(e);
    let out: Uint8Array;
    if (e.method === 0) {
      const b = await readAt(this.handle, at + start, n, this.path);
      out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } else {
      let all: Buffer;
      try {
        all = zlib.inflateRawSync(await readAt(this.handle, at, e.compressedSize, this.path), { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        throw new StudioError('BAD_INPUT', `${this.path}: entry '${name}' does not inflate (${(err as Error).message})`);
      }
      if (all.length !== e.size) throw new StudioError('BAD_INPUT', `${this.path}: entry '${name}' inflates to ${all.length} bytes, expected ${e.size}`);
      out = new Uint8Array(all.subarray(start, start + n)); // a copy: inflate's ArrayBuffer is larger
    }
    if (n === e.size && zlib.crc32(out) >>> 0 !== e.crc32) {
      throw new StudioError('BAD_INPUT', `${this.path}: entry '${name}' fails its CRC check (the file is damaged)`);
    }
    return out;
  }

  private async dataOffset(e: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(e.name);
    if (cached !== undefined) return cached;
    const head = await readAt(this.handle, e.headerOffset, 30, this.path);
    if (head.readUInt32LE(0) !== LOCAL) throw new StudioError('BAD_INPUT', `${this.path}: entry '${e.name}' has no local header (the file is damaged)`);
    // The local extra field differs from the central one: PyTorch pads it to align the data to 64 bytes.
    const at = e.headerOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
    if (at + e.compressedSize > this.size) throw new StudioError('BAD_INPUT', `${this.path}: entry '${e.name}' runs past the end of the file (truncated?)`);
    this.dataOffsets.set(e.name, at);
    return at;
  }
}

/** Replaces the 0xFFFFFFFF placeholders of a central entry by the zip64 extra field's 64-bit values. */
function readZip64Extra(e: ZipEntry, extra: Buffer): void {
  for (let q = 0; q + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (id === 0x0001) {
      let r = q + 4;
      const next = (): number => {
        const v = r + 8 <= q + 4 + len ? Number(extra.readBigUInt64LE(r)) : NaN;
        r += 8;
        return v;
      };
      // The fields appear in this fixed order, and only those whose 32-bit value overflowed.
      if (e.size === 0xffffffff) e.size = next();
      if (e.compressedSize === 0xffffffff) e.compressedSize = next();
      if (e.headerOffset === 0xffffffff) e.headerOffset = next();
    }
    q += 4 + len;
  }
}

/**
 * allocUnsafeSlow: never a slice of the shared pool (callers reinterpret `.buffer`), and no zero-fill
 * of a gigabyte that is overwritten at once; a short read throws rather than expose the garbage.
 */
async function readAt(handle: fs.promises.FileHandle, position: number, length: number, file: string): Promise<Buffer> {
  const out = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new StudioError('BAD_INPUT', `${file}: unexpected end of file at byte ${position + done} (truncated?)`);
    done += bytesRead;
  }
  return out;
}
