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
import { SDXL_VAE_SCALE } from '../../../nodes/supir/lib/vae-pipeline.ts';
import { COMPONENTS, type CompileOptions } from './components.ts';
import { MANIFEST_FILE, PACK_FORMAT, PACK_VERSION, sha256File, type PackComponent, type PackManifest } from '../../../nodes/supir/lib/pack-manifest.ts';

export const CONVERTER_VERSION = '1';
const PARTIAL_FILE = 'manifest.partial.json';
const VOCAB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets/tokenizer/bpe_simple_vocab_16e6.txt.gz');

export interface ConvertOptions extends CompileOptions {
  supir: string;
  sdxl: string;
  out: string;
  fp16?: boolean;
  log?: (line: string) => void;
}

export async function convertToPack(opts: ConvertOptions): Promise<PackManifest> {
  const log = opts.log ?? (() => undefined);
  fs.mkdirSync(opts.out, { recursive: true });
  log(`hashing ${opts.supir} and ${opts.sdxl}`);
  const sources: PackManifest['sources'] = [
    { role: 'supir', file: path.basename(opts.supir), bytes: fs.statSync(opts.supir).size, sha256: sha256File(opts.supir) },
    { role: 'sdxl', file: path.basename(opts.sdxl), bytes: fs.statSync(opts.sdxl).size, sha256: sha256File(opts.sdxl) },
  ];
  const dtype = opts.fp16 ? 'float16' : 'float32';
  const done = resumable(opts.out, sources, dtype);
  const components: Record<string, PackComponent> = {};
  let architecture: Record<string, unknown> = { ...(done?.architecture ?? {}) };
  const merged = await openMerged(opts.supir, opts.sdxl);
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
      const fp16 = opts.fp16 === true && def.fp16Allowed;
      // Weights are lazy: they are read from `merged` one at a time as the component is written.
      const written = await writeModel(compiled.graph.record(), path.join(opts.out, def.file), { fp16 });
      components[def.name] = {
        file: def.file,
        dtype: fp16 ? 'float16' : 'float32',
        bytes: fs.statSync(path.join(opts.out, def.file)).size,
        sha256: sha256File(path.join(opts.out, def.file)),
        inputs: def.inputs,
        outputs: def.outputs,
        external: written.files.slice(1).map((f) => path.basename(f)),
      };
      architecture = { ...architecture, ...compiled.architecture };
      await writeJson(path.join(opts.out, PARTIAL_FILE), { sources, dtype, architecture, components });
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
  dtype: string;
  architecture: Record<string, unknown>;
  components: Record<string, PackComponent>;
}

/** The progress of an earlier run on the same source files and precision, if any. */
function resumable(out: string, sources: PackManifest['sources'], dtype: string): Partial | undefined {
  try {
    const partial = JSON.parse(fs.readFileSync(path.join(out, PARTIAL_FILE), 'utf8')) as Partial;
    const same = partial.dtype === dtype && JSON.stringify(partial.sources) === JSON.stringify(sources);
    return same ? partial : undefined;
  } catch {
    return undefined;
  }
}

function fileMatches(out: string, c: PackComponent): boolean {
  const file = path.join(out, c.file);
  return (
    fs.existsSync(file) &&
    fs.statSync(file).size === c.bytes &&
    c.external.every((f) => fs.existsSync(path.join(out, f))) &&
    sha256File(file) === c.sha256
  );
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`));
}
