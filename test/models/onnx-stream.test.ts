/**
 * The converter's write path streams weights: checkpoint tensors reach the graph builder as lazy
 * weights (hashed, not held), and writeModel reads, converts and writes one external tensor at a
 * time. Checked on a checkpoint of several 4 MiB tensors through the converter's own readers, with
 * an instrumented checkpoint that records, at each read, which earlier tensors are still alive
 * (after a forced GC) and how much of the external data file is already on disk. The output must be
 * byte-identical to writing the same graph from weights held in memory (the pre-streaming path).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { openCheckpoint, type Checkpoint } from '../../server/models/checkpoint/checkpoint.ts';
import { writeSafetensors, type TensorToWrite } from '../../server/models/checkpoint/safetensors-writer.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { writeModel } from '../../server/models/onnx/export.ts';
import { lazyWeight, linear, weightsFromMap, type Weights, type WeightTensor } from '../../server/models/onnx/layers.ts';
import { isLazy } from '../../server/models/onnx/proto.ts';
import { readWeights } from '../../server/models/pack/weights.ts';
import { COMPONENTS } from '../../server/models/pack/components.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { openMerged } from '../../server/models/checkpoint/merge.ts';
import { GOLDEN_DIR } from '../support/golden.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-stream-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const WIDTH = 1024;
const LAYERS = 6;
/** One weight: WIDTH x WIDTH float32 = 4 MiB, well above the 1 MiB external threshold. */
const LARGE = WIDTH * WIDTH * 4;
/** l4.weight repeats l1.weight, so deduplication of lazy weights is exercised too. */
const DUPLICATE: Record<number, number> = { 4: 1 };

async function checkpointFile(): Promise<string> {
  const file = path.join(dir, 'layers.safetensors');
  if (fs.existsSync(file)) return file;
  const tensors: TensorToWrite[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const seed = DUPLICATE[i] ?? i;
    const w = new Rng(100 + seed).fillNormal(new Float32Array(WIDTH * WIDTH)).map((v) => v / 32);
    // Stored F16 as SDXL checkpoints are, so every read converts.
    tensors.push({ name: `l${i}.weight`, dtype: 'F16', shape: [WIDTH, WIDTH], data: f16Bytes(w) });
    tensors.push({ name: `l${i}.bias`, dtype: 'F32', shape: [WIDTH], data: new Uint8Array(new Rng(200 + i).fillNormal(new Float32Array(WIDTH)).buffer) });
  }
  await writeSafetensors(file, tensors);
  return file;
}

function f16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    // Values here are small normals: truncate the mantissa (exactness is irrelevant, only determinism).
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    out[i] = exp <= 0 ? sign : sign | (Math.min(exp, 30) << 10) | ((x >>> 13) & 0x3ff);
  }
  return new Uint8Array(out.buffer);
}

function build(w: Weights): GraphBuilder {
  const g = new GraphBuilder({ name: 'stream-test' });
  let y = g.input('x', 'float32', [1, WIDTH]);
  for (let i = 0; i < LAYERS; i++) y = linear(g, w, `l${i}`, y);
  g.output(y, 'y', 'float32', [1, WIDTH]);
  return g;
}

interface Probe {
  phase: 'hash' | 'write';
  /** Per large read: how many earlier large arrays handed out were still reachable. */
  alive: Record<'hash' | 'write', number[]>;
  /** Per large read in the write phase: bytes of the external data file already on disk. */
  onDisk: number[];
}

/**
 * A checkpoint whose float32 reads are watched. Before each large read it yields a macrotask (so
 * WeakRefs taken earlier no longer pin their targets) and forces a full GC: what is still alive
 * then is held by the code under test.
 */
function instrument(ck: Checkpoint, dataTmp: string): { ck: Checkpoint; probe: Probe } {
  const probe: Probe = { phase: 'hash', alive: { hash: [], write: [] }, onDisk: [] };
  const handedOut: Array<WeakRef<Float32Array>> = [];
  const watched: Checkpoint = {
    ...ck,
    async float32(key) {
      if (ck.shape(key).reduce((a, b) => a * b, 1) * 4 >= LARGE) {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
        probe.alive[probe.phase].push(handedOut.filter((r) => r.deref() !== undefined).length);
        if (probe.phase === 'write') probe.onDisk.push(fs.existsSync(dataTmp) ? fs.statSync(dataTmp).size : 0);
        const data = await ck.float32(key);
        handedOut.push(new WeakRef(data));
        return data;
      }
      return ck.float32(key);
    },
  };
  return { ck: watched, probe };
}

/** The pre-streaming path: every weight read into memory first. */
async function eagerWeights(ck: Checkpoint): Promise<Weights> {
  const map = new Map<string, WeightTensor>();
  for (const key of ck.keys()) map.set(key, { data: await ck.float32(key), dims: ck.shape(key) });
  return weightsFromMap(map, ck.path);
}

describe('streaming weights from a checkpoint into ONNX external data', () => {
  for (const fp16 of [false, true]) {
    it(`holds at most one earlier large tensor at any read and writes the same bytes as the in-memory path${fp16 ? ' (fp16)' : ''}`, async () => {
      const ck = await openCheckpoint(await checkpointFile());
      try {
        const out = path.join(dir, `lazy-${fp16}`);
        fs.mkdirSync(out, { recursive: true });
        const file = path.join(out, 'model.onnx');
        const { ck: watched, probe } = instrument(ck, `${file}.data.tmp`);

        const w = await readWeights(watched, ['l']);
        expect(isLazy(w.get('l0.weight').data)).toBe(true);
        const g = build(w);
        probe.phase = 'write';
        await writeModel(g.record(), file, { fp16 });

        // Hashing pass: every tensor read once, each dropped before the next.
        expect(probe.alive.hash).toHaveLength(LAYERS);
        expect(Math.max(...probe.alive.hash)).toBeLessThanOrEqual(1);
        // Write pass: the duplicate is not read again; each read finds the earlier tensors gone
        // (one may linger in a suspended async frame) and already written to the data file.
        expect(probe.alive.write).toHaveLength(LAYERS - 1);
        expect(Math.max(...probe.alive.write)).toBeLessThanOrEqual(1);
        const stored = fp16 ? LARGE / 2 : LARGE;
        expect(probe.onDisk).toEqual(Array.from({ length: LAYERS - 1 }, (_, i) => i * stored));

        // The same graph from in-memory weights (the converter before streaming): identical files.
        const eagerOut = path.join(dir, `eager-${fp16}`);
        fs.mkdirSync(eagerOut, { recursive: true });
        const eg = build(await eagerWeights(ck));
        expect(eg.stats()).toEqual(g.stats());
        await writeModel(eg.record(), path.join(eagerOut, 'model.onnx'), { fp16 });
        for (const f of ['model.onnx', 'model.onnx.data']) {
          expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(eagerOut, f))), f).toBe(true);
        }
      } finally {
        await ck.close();
      }
    });
  }

  it('the probe sees tensors that are held: reading all weights up front keeps every one alive', async () => {
    // Guards the test above against a probe that cannot fail (e.g. WeakRefs that never clear or always do).
    const ck = await openCheckpoint(await checkpointFile());
    try {
      const { ck: watched, probe } = instrument(ck, path.join(dir, 'none.tmp'));
      const held = await eagerWeights(watched);
      expect(probe.alive.hash).toEqual([0, 1, 2, 3, 4, 5]);
      expect(held.has('l5.weight')).toBe(true);
    } finally {
      await ck.close();
    }
  });

  it('fails the write when a lazy weight changed since it was hashed', async () => {
    let reads = 0;
    const w = await lazyWeight(async () => new Float32Array(WIDTH * WIDTH).fill(++reads), [WIDTH, WIDTH], "tensor 'w' of test");
    const g = new GraphBuilder({ name: 'changed' });
    g.output(g.op('Identity', [g.initializer('w', w, [WIDTH, WIDTH])]), 'y', 'float32', [WIDTH, WIDTH]);
    await expect(writeModel(g.record(), path.join(dir, 'changed.onnx'))).rejects.toThrow(/changed while the model was being converted/);
    expect(fs.existsSync(path.join(dir, 'changed.onnx'))).toBe(false);
  });

  it('refuses a lazy weight under other dims (its hash would not match) and an inline encode of one', async () => {
    const w = await lazyWeight(async () => new Float32Array(6).fill(1), [2, 3], 'test');
    const g = new GraphBuilder({ name: 'lazy' });
    expect(() => g.initializer('w', w, [3, 2])).toThrow(/asked for as float32 \[3, 2\]/);
    g.output(g.op('Identity', [g.initializer('w', w, [2, 3])]), 'y', 'float32', [2, 3]);
    expect(() => g.toBytes()).toThrow(/is lazy/);
    // Lazy weights dedup against in-memory ones of the same content, as two in-memory ones do.
    expect(g.initializer('same', new Float32Array(6).fill(1), [2, 3]).name).toBe('w');
  });
});

describe('the converter compiles every component from lazy weights', () => {
  it('each checkpoint-keyed initializer of each component is lazy until written', async () => {
    // If a component read its weights into memory, the write could no longer stream them.
    const files = await writeTinyCheckpoints(GOLDEN_DIR, dir);
    const ck = await openMerged(files.supir, files.sdxl);
    try {
      for (const def of COMPONENTS) {
        const { graph } = await def.compile(ck, TINY_COMPILE_OPTIONS);
        const weights = graph.record().initializers.filter((t) => ck.has(t.name));
        expect(weights.length, def.name).toBeGreaterThan(10);
        expect(weights.filter((t) => !isLazy(t.data)).map((t) => t.name), def.name).toEqual([]);
      }
    } finally {
      await ck.close();
    }
  });
});
