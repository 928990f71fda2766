/**
 * The file formats of the queue journal (server/engine/journal.ts), kept apart from its logic.
 *
 * Lines: `<crc32 of the JSON, 8 hex digits> <JSON>\n`. A line whose checksum does not match is
 * damaged and skipped. Lines written before checksums existed (a bare `{...}` JSON object) are still
 * read, without that protection.
 *
 * Files are read as a stream of lines, a chunk at a time, never as one string: a snapshot may be
 * larger than the longest string the JavaScript engine can make (about 512 MiB).
 *
 * Bodies: the prompt and workflow of a prompt too large to keep in the history list are stored in
 * `bodies/<id>.json` as `{"prompt":...,"workflow":...}`; the journal keeps a reference with the
 * file's size and CRC32.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

/** A line longer than this is damage (no record is near it: large bodies are stored apart). */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;
const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const OPEN_BRACE = 0x7b;

/** The prompt and workflow of one prompt, stored in a file of their own. */
export interface BodyRef {
  /** Size of the file in bytes. */
  bytes: number;
  /** CRC32 of the file's bytes. */
  crc: number;
}

/** One journal line, newline included. */
export function encodeLine(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

export type DecodedLine = { ok: true; value: unknown } | { ok: false; problem: string };

/** Checks and parses one line (without its newline). */
export function decodeLine(line: Buffer): DecodedLine {
  let json: Buffer;
  if (line[0] === OPEN_BRACE) {
    json = line; // written before checksums: read as it is
  } else {
    if (line.length < 10 || line[8] !== SPACE || !/^[0-9a-f]{8}$/.test(line.toString('latin1', 0, 8))) return { ok: false, problem: 'not a journal line' };
    json = line.subarray(9);
    const expected = Number.parseInt(line.toString('latin1', 0, 8), 16);
    if (crc32(json) !== expected) return { ok: false, problem: 'checksum mismatch' };
  }
  try {
    return { ok: true, value: JSON.parse(json.toString('utf8')) };
  } catch (err) {
    return { ok: false, problem: `not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
}

/**
 * Calls `onLine` for every line of `file`, reading it a chunk at a time. `line` is null for a line
 * over MAX_LINE_BYTES (not kept in memory); `terminated` is false for a last line without its
 * newline (cut short by a crash). The buffer is only valid during the call. Returns why the file
 * could not be read (not a regular file, an I/O error), or null.
 */
export function forEachLineSync(file: string, onLine: (line: Buffer | null, lineNo: number, terminated: boolean) => void): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    return errorText(err);
  }
  try {
    // A symlink to a device (/dev/zero) would never end: only regular files are journal files.
    if (!fs.fstatSync(fd).isFile()) return 'not a regular file';
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let parts: Buffer[] = [];
    let partBytes = 0;
    let lineNo = 0;
    for (;;) {
      let got: number;
      try {
        got = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        return errorText(err);
      }
      if (got === 0) break;
      const data = chunk.subarray(0, got);
      let start = 0;
      while (start < got) {
        const nl = data.indexOf(NEWLINE, start);
        const end = nl < 0 ? got : nl;
        const tooLong = partBytes + (end - start) > MAX_LINE_BYTES;
        if (nl < 0) {
          // The line goes on in the next chunk: keep a copy (the chunk is reused), unless it is already too long.
          if (!tooLong) parts.push(Buffer.from(data.subarray(start, end)));
          else parts = [];
          partBytes += end - start;
          break;
        }
        lineNo++;
        if (tooLong) onLine(null, lineNo, true);
        else onLine(parts.length === 0 ? data.subarray(start, end) : Buffer.concat([...parts, data.subarray(start, end)]), lineNo, true);
        parts = [];
        partBytes = 0;
        start = nl + 1;
      }
    }
    if (partBytes > 0) onLine(partBytes > MAX_LINE_BYTES ? null : Buffer.concat(parts), lineNo + 1, false);
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** `bodies/<id>.json` under the state folder; ids are checked before they name a file. */
export function bodyPath(dir: string, id: string): string {
  if (!isBodyId(id)) throw new Error(`${JSON.stringify(id)} cannot name a body file`);
  return path.join(dir, 'bodies', `${id}.json`);
}

export function isBodyId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(id);
}

/** The text of a body file. */
export function encodeBody(prompt: unknown, workflow: unknown): string {
  return `{"prompt":${JSON.stringify(prompt)},"workflow":${JSON.stringify(workflow ?? null)}}`;
}

export function bodyRef(bytes: Buffer): BodyRef {
  return { bytes: bytes.length, crc: crc32(bytes) };
}

/** Checks a body file's bytes against its reference; the problem, or null. */
export function checkBody(bytes: Buffer, ref: BodyRef): string | null {
  if (bytes.length !== ref.bytes) return `it has ${bytes.length} bytes instead of ${ref.bytes}`;
  if (crc32(bytes) !== ref.crc) return 'checksum mismatch';
  if (bytes[0] !== OPEN_BRACE) return 'not a body file';
  return null;
}

/** Reads and checks a body file (synchronously, at load); throws with the reason. */
export function readBodySync(dir: string, id: string, ref: BodyRef): { prompt: unknown; workflow: unknown } {
  const bytes = fs.readFileSync(bodyPath(dir, id));
  const problem = checkBody(bytes, ref);
  if (problem) throw new Error(`${bodyPath(dir, id)}: ${problem}`);
  return JSON.parse(bytes.toString('utf8')) as { prompt: unknown; workflow: unknown };
}

/** Reads and checks a body file; its bytes (`{"prompt":...,"workflow":...}`), or throws with the reason. */
export async function readBody(dir: string, id: string, ref: BodyRef): Promise<Buffer> {
  const bytes = await fs.promises.readFile(bodyPath(dir, id));
  const problem = checkBody(bytes, ref);
  if (problem) throw new Error(`${bodyPath(dir, id)}: ${problem}`);
  return bytes;
}

/** Writes a file under a temporary name, flushes it (when asked) and renames it: complete or absent. */
export async function writeFileAtomic(file: string, data: Buffer, fsync: boolean): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const handle = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await handle.write(data);
      if (fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

export function isBodyRef(v: unknown): v is BodyRef {
  return typeof v === 'object' && v !== null && Number.isSafeInteger((v as BodyRef).bytes) && Number.isSafeInteger((v as BodyRef).crc);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
