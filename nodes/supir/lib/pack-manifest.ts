/**
 * A SUPIR model pack: a folder of ONNX components plus `manifest.json`, written by
 * `supir-studio convert` and read by the SUPIR nodes. The manifest says what each file is, which
 * checkpoints it came from (by hash), and what it expects, so that a pack that cannot work is
 * refused with the name of the component at fault instead of failing inside onnxruntime.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { StudioError } from '../../api/errors.ts';

export const PACK_FORMAT = 'supir-studio/model-pack';
export const PACK_VERSION = 1;

const TensorSpecSchema = z.object({
  name: z.string(),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32']),
  dims: z.array(z.union([z.number().int(), z.string()])),
});

export const ComponentSchema = z.object({
  file: z.string().regex(/^[\w.-]+$/, 'a plain file name inside the pack'),
  /** Weights precision of the file; inputs and outputs stay float32 at the interface. */
  dtype: z.enum(['float32', 'float16']),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  inputs: z.array(TensorSpecSchema),
  outputs: z.array(TensorSpecSchema),
  /** External weight files next to the ONNX file (models over 2 GB). */
  external: z.array(z.string().regex(/^[\w.-]+$/)).default([]),
});

export const ManifestSchema = z.object({
  format: z.literal(PACK_FORMAT),
  version: z.literal(PACK_VERSION),
  converter: z.string(),
  created: z.string(),
  sources: z.array(z.object({ role: z.enum(['supir', 'sdxl']), file: z.string(), bytes: z.number().int(), sha256: z.string() })),
  /** The architecture as derived from the weights (channels, depths, heads, ...). */
  architecture: z.record(z.string(), z.unknown()),
  scale_factor: z.number().positive(),
  components: z.record(z.string(), ComponentSchema),
  tokenizer: z.object({ vocab: z.string().regex(/^[\w.-]+$/) }).optional(),
});

export type PackManifest = z.infer<typeof ManifestSchema>;
export type PackComponent = z.infer<typeof ComponentSchema>;

export const MANIFEST_FILE = 'manifest.json';

/**
 * Reads and checks a pack: the manifest parses, every component the caller needs is listed, and
 * each file exists with the recorded size (hashes are checked with `verify: true`, which reads
 * every byte). Errors name the pack and the component.
 */
export function readPack(dir: string, opts: { require?: string[]; verify?: boolean } = {}): PackManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StudioError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_INPUT', `${dir} is not a model pack: cannot read ${MANIFEST_FILE} (${code ?? (err as Error).message})`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StudioError('BAD_INPUT', `${file}: ${issue.path.join('.') || '(manifest)'}: ${issue.message}`);
  }
  const manifest = parsed.data;
  for (const name of opts.require ?? []) {
    if (!manifest.components[name]) throw new StudioError('NOT_FOUND', `model pack ${dir} has no '${name}' component (has: ${Object.keys(manifest.components).join(', ')})`);
  }
  for (const [name, c] of Object.entries(manifest.components)) {
    for (const f of [c.file, ...c.external]) {
      const stat = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
      if (!stat) throw new StudioError('NOT_FOUND', `model pack ${dir}: component '${name}' is missing its file ${f}`);
    }
    const size = fs.statSync(path.join(dir, c.file)).size;
    if (size !== c.bytes) throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' (${c.file}) has ${size} bytes, the manifest says ${c.bytes}: incomplete or replaced`);
    if (opts.verify && sha256File(path.join(dir, c.file)) !== c.sha256) {
      throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' (${c.file}) does not match its recorded hash`);
    }
  }
  return manifest;
}

export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
