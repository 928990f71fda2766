/**
 * The pack contract as the manifest reader applies it, on hand-made packs (placeholder files of
 * known sizes: readPack checks sizes and the recorded interface, not ONNX contents): a version-1
 * manifest is lifted (precision from the dtypes, bytes made the total), and a pack whose
 * components do not match the contract is refused naming the component.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPONENTS } from '../../server/models/pack/components.ts';
import { requestedPrecision } from '../../server/models/pack/convert.ts';
import { componentDtype, SUPIR_COMPONENTS, SUPIR_PACK, type PackPrecision, type SupirComponent } from '../../nodes/supir/lib/pack-contract.ts';
import { MANIFEST_FILE, PACK_VERSION, readPack } from '../../nodes/supir/lib/pack-manifest.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-contract-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const ONNX_BYTES = 100;
/** The denoiser's external weights; the other components keep theirs inside. */
const DATA_BYTES = 5000;
const HASH = 'a'.repeat(64);

/** A pack folder with placeholder files and the manifest `edit` makes of a correct one. */
function pack(name: string, version: 1 | 2, precision: PackPrecision, edit: (m: Record<string, any>) => void = () => undefined): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  const components: Record<string, unknown> = {};
  for (const c of SUPIR_COMPONENTS) {
    const { file, inputs, outputs } = SUPIR_PACK[c];
    fs.writeFileSync(path.join(dir, file), Buffer.alloc(ONNX_BYTES));
    const external = c === 'denoiser_step' ? [`${file}.data`] : [];
    for (const f of external) fs.writeFileSync(path.join(dir, f), Buffer.alloc(DATA_BYTES));
    const externalBytes = external.length * DATA_BYTES;
    components[c] = {
      file,
      dtype: componentDtype(c, precision),
      // Version 1 recorded the .onnx file alone; version 2 the total with external_bytes of it.
      ...(version === 1 ? { bytes: ONNX_BYTES } : { bytes: ONNX_BYTES + externalBytes, external_bytes: externalBytes }),
      sha256: HASH,
      inputs,
      outputs,
      external,
    };
  }
  const manifest: Record<string, any> = {
    format: 'supir-studio/model-pack',
    version,
    converter: '1',
    created: '2025-01-01T00:00:00Z',
    ...(version === 2 ? { precision } : {}),
    sources: [],
    architecture: {},
    scale_factor: 0.13025,
    components,
  };
  edit(manifest);
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  return dir;
}

const read = (dir: string) => readPack(dir, { require: SUPIR_COMPONENTS });

describe('the SUPIR pack contract', () => {
  it('the compiler compiles exactly the contract, in its order', () => {
    expect(PACK_VERSION).toBe(2);
    expect(COMPONENTS.map((c) => c.name)).toEqual([...SUPIR_COMPONENTS]);
    expect(SUPIR_COMPONENTS).toEqual(['denoiser_step', 'vae_encoder', 'vae_denoise_encoder', 'vae_decoder', 'clip_l', 'clip_bigg']);
    for (const c of COMPONENTS) expect({ file: c.file, halfPrecision: c.halfPrecision, inputs: c.inputs, outputs: c.outputs }).toEqual(SUPIR_PACK[c.name]);
  });

  it('only the VAE stays float32 in an fp16 pack', () => {
    const dtypes = (p: PackPrecision) => Object.fromEntries(SUPIR_COMPONENTS.map((c) => [c, componentDtype(c, p)]));
    expect(dtypes('fp32')).toEqual(Object.fromEntries(SUPIR_COMPONENTS.map((c) => [c, 'float32'])));
    expect(dtypes('fp16')).toEqual({ denoiser_step: 'float16', vae_encoder: 'float32', vae_denoise_encoder: 'float32', vae_decoder: 'float32', clip_l: 'float16', clip_bigg: 'float16' });
  });

  it('convert takes precision, or fp16 as its alias, and refuses the two disagreeing', () => {
    expect(requestedPrecision({})).toBe('fp32');
    expect(requestedPrecision({ fp16: true })).toBe('fp16');
    expect(requestedPrecision({ precision: 'fp16' })).toBe('fp16');
    expect(requestedPrecision({ precision: 'fp32', fp16: false })).toBe('fp32');
    expect(() => requestedPrecision({ precision: 'fp32', fp16: true })).toThrow(/precision fp32 contradicts fp16: true/);
  });
});

describe('readPack', () => {
  it('reads a version-2 manifest: precision, total bytes and external bytes as recorded', () => {
    const m = read(pack('v2', 2, 'fp16'));
    expect(m.precision).toBe('fp16');
    expect(m.components.denoiser_step).toMatchObject({ bytes: ONNX_BYTES + DATA_BYTES, external_bytes: DATA_BYTES, dtype: 'float16' });
    expect(m.components.vae_decoder).toMatchObject({ bytes: ONNX_BYTES, external_bytes: 0, dtype: 'float32' });
  });

  it('lifts a version-1 manifest: precision from the dtypes, bytes made the total from the files', () => {
    for (const precision of ['fp32', 'fp16'] as const) {
      const m = read(pack(`v1-${precision}`, 1, precision));
      expect(m.version).toBe(2);
      expect(m.precision).toBe(precision);
      expect(m.components.denoiser_step).toMatchObject({ bytes: ONNX_BYTES + DATA_BYTES, external_bytes: DATA_BYTES });
      expect(m.components.clip_l).toMatchObject({ bytes: ONNX_BYTES, external_bytes: 0 });
    }
  });

  it('refuses external weights of another size than recorded, naming the component', () => {
    const dir = pack('short-data', 2, 'fp32');
    fs.truncateSync(path.join(dir, 'denoiser_step.onnx.data'), DATA_BYTES - 1);
    expect(() => read(dir)).toThrow(`component 'denoiser_step' has ${DATA_BYTES - 1} bytes of external weights (denoiser_step.onnx.data), the manifest says ${DATA_BYTES}`);
    // A version-2 manifest whose bytes counts the .onnx alone (the version-1 meaning) is refused too.
    const onnxOnly = pack('onnx-only', 2, 'fp32', (m) => (m.components.denoiser_step.bytes = ONNX_BYTES));
    expect(() => read(onnxOnly)).toThrow(/components\.denoiser_step: bytes is the total of the \.onnx file and its external weights, so it must exceed external_bytes/);
    // One whose total is off by the .onnx file's size is refused on the .onnx file.
    const longer = pack('longer', 2, 'fp32', (m) => (m.components.clip_l.bytes = ONNX_BYTES + 1));
    expect(() => read(longer)).toThrow(/component 'clip_l' \(clip_l\.onnx\) has 100 bytes, the manifest says 101: incomplete or replaced/);
  });

  it('refuses a version-2 manifest without precision or external_bytes', () => {
    expect(() => read(pack('no-precision', 2, 'fp32', (m) => delete m.precision))).toThrow(/manifest\.json: precision: /);
    expect(() => read(pack('no-external', 2, 'fp32', (m) => delete m.components.clip_l.external_bytes))).toThrow(/components\.clip_l\.external_bytes/);
  });

  it('refuses components whose dtype the precision does not allow (an fp16 VAE, fp16 weights in an fp32 pack)', () => {
    expect(() => read(pack('fp16-vae', 2, 'fp16', (m) => (m.components.vae_decoder.dtype = 'float16')))).toThrow(
      /component 'vae_decoder' stores float16 weights, which a fp16 pack does not/,
    );
    expect(() => read(pack('mixed', 2, 'fp32', (m) => (m.components.clip_bigg.dtype = 'float16')))).toThrow(/component 'clip_bigg' stores float16 weights, which a fp32 pack does not/);
  });

  it('refuses a component whose interface or file is not the contract\'s, naming it', () => {
    const cases: Array<[string, SupirComponent, (c: Record<string, any>) => void, RegExp]> = [
      ['no-pooled', 'clip_bigg', (c) => (c.outputs = c.outputs.slice(0, 1)), /component 'clip_bigg' has outputs hidden, this SUPIR Studio expects hidden, pooled: convert the pack again/],
      ['renamed-input', 'denoiser_step', (c) => (c.inputs = c.inputs.map((s: { name: string }) => (s.name === 'y' ? { ...s, name: 'vector' } : s))), /component 'denoiser_step' has inputs x, timesteps, context, vector, control, control_scale, this SUPIR Studio expects x, timesteps, context, y, control, control_scale/],
      ['other-file', 'vae_encoder', (c) => (c.file = 'vae_decoder.onnx'), /component 'vae_encoder' is in vae_decoder\.onnx, this SUPIR Studio expects vae_encoder\.onnx/],
    ];
    for (const [name, component, edit, message] of cases) {
      expect(() => read(pack(name, 2, 'fp32', (m) => edit(m.components[component])))).toThrow(message);
    }
  });
});
