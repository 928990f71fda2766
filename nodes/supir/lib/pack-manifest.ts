/**
 * A SUPIR model pack: a folder of ONNX components plus `manifest.json`, written by
 * `supir-studio convert` and read by the SUPIR nodes. The manifest says what each file is, which
 * checkpoints it came from (by hash), its precision and what each component expects, so that a
 * pack that cannot work is refused with the name of the component at fault instead of failing
 * inside onnxruntime. What a component must be is the pack contract (pack-contract.ts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { StudioError } from '../../api/errors.ts';
import { componentDtype, isSupirComponent, PACK_PRECISIONS, SUPIR_PACK, type PackPrecision, type TensorSpec } from './pack-contract.ts';

export const PACK_FORMAT = 'supir-studio/model-pack';
/**
 * 2: `precision` recorded, and a component's `bytes` counts its external weights too
 * (`external_bytes` of them). Version 1 manifests are read and lifted to version 2.
 */
export const PACK_VERSION = 2;

const TensorSpecSchema = z.object({
  name: z.string(),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32']),
  dims: z.array(z.union([z.number().int(), z.string()])),
});

const fileName = z.string().regex(/^[\w.-]+$/, 'a plain file name inside the pack');

const ComponentV1Schema = z.object({
  file: fileName,
  /** Weights precision of the file; inputs and outputs stay float32 at the interface. */
  dtype: z.enum(['float32', 'float16']),
  /** Version 1: the bytes of the .onnx file alone. */
  bytes: z.number().int().positive(),
  /** SHA-256 of the .onnx file. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  inputs: z.array(TensorSpecSchema),
  outputs: z.array(TensorSpecSchema),
  /** External weight files next to the ONNX file (`<file>.data`). */
  external: z.array(fileName).default([]),
});

export const ComponentSchema = ComponentV1Schema.extend({
  /** All the component's bytes on disk: the .onnx file plus its external weight files. */
  bytes: z.number().int().positive(),
  /** Of `bytes`, those in the external files (0 when the weights are all inside the .onnx). */
  external_bytes: z.number().int().min(0),
}).refine((c) => c.bytes > c.external_bytes, { message: 'bytes is the total of the .onnx file and its external weights, so it must exceed external_bytes' });

const common = {
  format: z.literal(PACK_FORMAT),
  converter: z.string(),
  created: z.string(),
  sources: z.array(z.object({ role: z.enum(['supir', 'sdxl', 'vae']), file: z.string(), bytes: z.number().int(), sha256: z.string() })),
  /** The architecture as derived from the weights (channels, depths, heads, ...). */
  architecture: z.record(z.string(), z.unknown()),
  scale_factor: z.number().positive(),
  tokenizer: z.object({ vocab: fileName }).optional(),
};

export const ManifestSchema = z.object({
  ...common,
  version: z.literal(PACK_VERSION),
  /** The precision the pack was converted at (`convert --precision`). */
  precision: z.enum(PACK_PRECISIONS),
  components: z.record(z.string(), ComponentSchema),
});

const ManifestV1Schema = z.object({ ...common, version: z.literal(1), components: z.record(z.string(), ComponentV1Schema) });

export type PackManifest = z.infer<typeof ManifestSchema>;
export type PackComponent = z.infer<typeof ComponentSchema>;

export const MANIFEST_FILE = 'manifest.json';

/** The precision of a pack that did not record one: fp16 when any component stores float16 weights. */
export function precisionOf(components: Record<string, { dtype: string }>): PackPrecision {
  return Object.values(components).some((c) => c.dtype === 'float16') ? 'fp16' : 'fp32';
}

/** The .onnx file's own bytes, as recorded. */
export function onnxBytes(c: PackComponent): number {
  return c.bytes - c.external_bytes;
}

/**
 * Version 1 → 2: precision from the components' dtypes; `bytes` becomes the total, with the
 * external files' sizes (never recorded in version 1) taken from disk.
 */
function liftV1(v1: z.infer<typeof ManifestV1Schema>, dir: string): PackManifest {
  const components: Record<string, PackComponent> = {};
  for (const [name, c] of Object.entries(v1.components)) {
    const external = c.external.reduce((a, f) => a + (fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0);
    components[name] = { ...c, bytes: c.bytes + external, external_bytes: external };
  }
  return { ...v1, version: PACK_VERSION, precision: precisionOf(v1.components), components };
}

function parseManifest(raw: unknown, file: string, dir: string): PackManifest {
  const v1 = typeof raw === 'object' && raw !== null && (raw as { version?: unknown }).version === 1;
  const parsed = v1 ? ManifestV1Schema.safeParse(raw) : ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StudioError('BAD_INPUT', `${file}: ${issue.path.join('.') || '(manifest)'}: ${issue.message}`);
  }
  return v1 ? liftV1(parsed.data as z.infer<typeof ManifestV1Schema>, dir) : (parsed.data as PackManifest);
}

const names = (specs: readonly TensorSpec[]): string => specs.map((s) => s.name).join(', ');

/**
 * Reads and checks a pack: the manifest parses, every component the caller needs is listed, each
 * SUPIR component offers the interface the contract names, and each file exists with the recorded
 * size (the .onnx and its external data; hashes of the .onnx are checked with `verify: true`,
 * which reads every byte). Errors name the pack and the component.
 */
export function readPack(dir: string, opts: { require?: readonly string[]; verify?: boolean } = {}): PackManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StudioError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_INPUT', `${dir} is not a model pack: cannot read ${MANIFEST_FILE} (${code ?? (err as Error).message})`);
  }
  const manifest = parseManifest(raw, file, dir);
  for (const name of opts.require ?? []) {
    if (!manifest.components[name]) throw new StudioError('NOT_FOUND', `model pack ${dir} has no '${name}' component (has: ${Object.keys(manifest.components).join(', ')})`);
  }
  for (const [name, c] of Object.entries(manifest.components)) {
    if (isSupirComponent(name)) {
      const want = SUPIR_PACK[name];
      if (c.file !== want.file) throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' is in ${c.file}, this SUPIR Studio expects ${want.file}: convert the pack again`);
      for (const side of ['inputs', 'outputs'] as const) {
        if (names(c[side]) !== names(want[side])) {
          throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' has ${side} ${names(c[side]) || '(none)'}, this SUPIR Studio expects ${names(want[side])}: convert the pack again`);
        }
      }
      if (c.dtype !== componentDtype(name, manifest.precision)) {
        throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' stores ${c.dtype} weights, which a ${manifest.precision} pack does not`);
      }
    }
    for (const f of [c.file, ...c.external]) {
      const stat = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
      if (!stat) throw new StudioError('NOT_FOUND', `model pack ${dir}: component '${name}' is missing its file ${f}`);
    }
    const size = fs.statSync(path.join(dir, c.file)).size;
    const external = c.external.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
    if (size !== onnxBytes(c)) throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' (${c.file}) has ${size} bytes, the manifest says ${onnxBytes(c)}: incomplete or replaced`);
    if (external !== c.external_bytes) {
      throw new StudioError('BAD_INPUT', `model pack ${dir}: component '${name}' has ${external} bytes of external weights (${c.external.join(', ') || 'none'}), the manifest says ${c.external_bytes}: incomplete or replaced`);
    }
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
