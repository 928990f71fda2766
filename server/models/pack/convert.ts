/**
 * `supir-studio convert`: SUPIR + SDXL checkpoints → a model pack of ONNX components. Each
 * component is written atomically and recorded in `manifest.partial.json` as it completes, so a
 * run that was stopped resumes where it was (components already made from the same source files
 * are kept); the manifest proper appears last, so a pack is either complete or not a pack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../../nodes/api/data-dirs.ts';
import { openMerged } from '../checkpoint/merge.ts';
import { writeModel } from '../onnx/export.ts';
import { StudioError } from '../../../nodes/api/errors.ts';
import { componentDtype, SDXL_VAE_SCALE, type PackPrecision } from '../../../nodes/supir/lib/pack-contract.ts';
import { COMPONENTS, type CompileOptions } from './components.ts';
import { MANIFEST_FILE, onnxBytes, PACK_FORMAT, PACK_VERSION, sha256File, type PackComponent, type PackManifest } from '../../../nodes/supir/lib/pack-manifest.ts';

export const CONVERTER_VERSION = '1';
const PARTIAL_FILE = 'manifest.partial.json';
const VOCAB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets/tokenizer/bpe_simple_vocab_16e6.txt.gz');

export interface ConvertOptions extends CompileOptions {
  supir: string;
  sdxl: string;
  /** A VAE file that replaces the base's (or stands in for a base without one). */
  vae?: string;
  out: string;
  /** fp16 stores (and computes) the components the contract allows in float16; fp32 by default. */
  precision?: PackPrecision;
  /** The older spelling of `precision: 'fp16'`. */
  fp16?: boolean;
  /** Tensors of at least this many bytes go to `<component>.onnx.data` (the writer's default: 1 MiB). */
  externalThreshold?: number;
  log?: (line: string) => void;
}

/** The precision asked for; `fp16: true` is `precision: 'fp16'`, and the two must not disagree. */
export function requestedPrecision(opts: Pick<ConvertOptions, 'precision' | 'fp16'>): PackPrecision {
  if (opts.precision !== undefined && opts.fp16 !== undefined && opts.fp16 !== (opts.precision === 'fp16')) {
    throw new StudioError('BAD_INPUT', `precision ${opts.precision} contradicts fp16: ${opts.fp16}`);
  }
  return opts.precision ?? (opts.fp16 ? 'fp16' : 'fp32');
}

export async function convertToPack(opts: ConvertOptions): Promise<PackManifest> {
  const log = opts.log ?? (() => undefined);
  fs.mkdirSync(opts.out, { recursive: true });
  log(`hashing ${opts.supir} and ${opts.sdxl}`);
  const sources: PackManifest['sources'] = [
    { role: 'supir', file: path.basename(opts.supir), bytes: fs.statSync(opts.supir).size, sha256: sha256File(opts.supir) },
    { role: 'sdxl', file: path.basename(opts.sdxl), bytes: fs.statSync(opts.sdxl).size, sha256: sha256File(opts.sdxl) },
    ...(opts.vae ? [{ role: 'vae' as const, file: path.basename(opts.vae), bytes: fs.statSync(opts.vae).size, sha256: sha256File(opts.vae) }] : []),
  ];
  const precision = requestedPrecision(opts);
  const done = resumable(opts.out, sources, precision);
  const components: Record<string, PackComponent> = {};
  let architecture: Record<string, unknown> = { ...(done?.architecture ?? {}) };
  const merged = await openMerged(opts.supir, opts.sdxl, opts.vae ? { vae: opts.vae } : {});
  try {
    for (const [i, def] of COMPONENTS.entries()) {
      const step = `[${i + 1}/${COMPONENTS.length}] ${def.name}`;
      const previous = done?.components[def.name];
      if (previous && fileMatches(opts.out, previous)) {
        components[def.name] = previous;
        log(`${step}: already converted, kept`);
        continue;
      }
      const t0 = performance.now();
      const compiled = await def.compile(merged, opts);
      const dtype = componentDtype(def.name, precision);
      // Weights are lazy: they are read from `merged` one at a time as the component is written.
      const written = await writeModel(compiled.graph.record(), path.join(opts.out, def.file), {
        fp16: dtype === 'float16',
        ...(opts.externalThreshold !== undefined ? { externalThreshold: opts.externalThreshold } : {}),
      });
      const external = written.files.slice(1).map((f) => path.basename(f));
      const externalBytes = external.reduce((a, f) => a + fs.statSync(path.join(opts.out, f)).size, 0);
      components[def.name] = {
        file: def.file,
        dtype,
        bytes: fs.statSync(path.join(opts.out, def.file)).size + externalBytes,
        external_bytes: externalBytes,
        sha256: sha256File(path.join(opts.out, def.file)),
        inputs: def.inputs.map((s) => ({ ...s, dims: [...s.dims] })),
        outputs: def.outputs.map((s) => ({ ...s, dims: [...s.dims] })),
        external,
      };
      architecture = { ...architecture, ...compiled.architecture };
      await writeJson(path.join(opts.out, PARTIAL_FILE), { sources, precision, architecture, components });
      log(`${step}: ${(written.bytes / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await merged.close();
  }
  await writeFileAtomic(path.join(opts.out, 'bpe_simple_vocab_16e6.txt.gz'), fs.readFileSync(VOCAB));
  const manifest: PackManifest = {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    converter: CONVERTER_VERSION,
    created: new Date().toISOString(),
    precision,
    sources,
    architecture,
    scale_factor: SDXL_VAE_SCALE,
    components,
    tokenizer: { vocab: 'bpe_simple_vocab_16e6.txt.gz' },
  };
  await writeJson(path.join(opts.out, MANIFEST_FILE), manifest);
  fs.rmSync(path.join(opts.out, PARTIAL_FILE), { force: true });
  return manifest;
}

interface Partial {
  sources: PackManifest['sources'];
  precision: PackPrecision;
  architecture: Record<string, unknown>;
  components: Record<string, PackComponent>;
}

/** The progress of an earlier run on the same source files and precision, if any. */
function resumable(out: string, sources: PackManifest['sources'], precision: PackPrecision): Partial | undefined {
  try {
    const partial = JSON.parse(fs.readFileSync(path.join(out, PARTIAL_FILE), 'utf8')) as Partial;
    const same = partial.precision === precision && JSON.stringify(partial.sources) === JSON.stringify(sources);
    return same ? partial : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a component recorded by an earlier run is on disk as recorded (sizes of every file, hash of the .onnx). */
function fileMatches(out: string, c: PackComponent): boolean {
  const file = path.join(out, c.file);
  const size = (f: string): number => fs.statSync(path.join(out, f), { throwIfNoEntry: false })?.size ?? -1;
  if (typeof c.external_bytes !== 'number' || size(c.file) !== onnxBytes(c)) return false;
  const external = c.external.map(size);
  return !external.includes(-1) && external.reduce((a, b) => a + b, 0) === c.external_bytes && sha256File(file) === c.sha256;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`));
}
