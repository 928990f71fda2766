import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../nodes/api/env.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import { InputError } from '../../nodes/api/errors.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import { checkWidgetValue } from '../../nodes/api/widgets.ts';
import { decodeImage, encodeImage } from '../../nodes/image/codec.ts';
import LoadImage from '../../nodes/image/load.ts';
import { readPngTextChunks } from '../../nodes/image/png-text.ts';
import PreviewImage from '../../nodes/image/preview.ts';
import SaveImage from '../../nodes/image/save.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { random8 } from '../support/images.ts';

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((c) => c()));
let env: NodeEnv;
beforeEach(() => {
  const t = tempEnv();
  cleanups.push(t.cleanup);
  env = t.env;
});

const saveArgs = { filename_prefix: 'supir', format: 'png', quality: 95 };
const outputs = (): string => env.dirs.folders.outputs;

describe('SaveImage', () => {
  it('writes each batch item with the next free counter and records it', async () => {
    const image = random8(2, 3, 5, 7);
    const ctx = fakeContext(env);
    expect(await runNode(SaveImage, { image, ...saveArgs }, ctx)).toEqual({});
    await runNode(SaveImage, { image: random8(1, 3, 5, 7), ...saveArgs }, ctx);
    expect(fs.readdirSync(outputs()).sort()).toEqual(['supir_00001_.png', 'supir_00002_.png', 'supir_00003_.png']);
    expect(ctx.files).toEqual([1, 2, 3].map((k) => ({
      folder: 'outputs', filename: `supir_0000${k}_.png`, kind: 'image', width: 7, height: 5,
    })));
    const second = await decodeImage(fs.readFileSync(path.join(outputs(), 'supir_00002_.png')), env.limits);
    expect(Array.from(second.data)).toEqual(Array.from(image.data.subarray(3 * 5 * 7)));
  });

  it('continues after the highest number present and leaves other prefixes alone', async () => {
    fs.writeFileSync(path.join(outputs(), 'supir_00041_.jpg'), 'x');
    fs.writeFileSync(path.join(outputs(), 'supir2_00100_.png'), 'x');
    const ctx = fakeContext(env);
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs }, ctx);
    expect(ctx.files[0]?.filename).toBe('supir_00042_.png');
  });

  it('embeds workflow and prompt as ASCII JSON in PNG text chunks', async () => {
    const workflow = { nodes: [{ id: 3, type: 'SaveImage', title: 'Été ☀' }], links: [] };
    const prompt = { '3': { class_type: 'SaveImage', inputs: { filename_prefix: 'supir' } } };
    const ctx = fakeContext(env, { extra: { workflow, prompt } });
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs }, ctx);
    const bytes = fs.readFileSync(path.join(outputs(), 'supir_00001_.png'));
    const text = readPngTextChunks(bytes);
    expect(text.workflow).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(text.workflow!)).toEqual(workflow);
    expect(JSON.parse(text.prompt!)).toEqual(prompt);
  });

  it('writes no text chunks when there is no workflow, and JPEG / WebP with their extensions', async () => {
    const ctx = fakeContext(env);
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs }, ctx);
    expect(readPngTextChunks(fs.readFileSync(path.join(outputs(), 'supir_00001_.png')))).toEqual({});
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs, format: 'jpeg', quality: 80 }, ctx);
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs, format: 'webp' }, ctx);
    expect(ctx.files.map((f) => f.filename)).toEqual(['supir_00001_.png', 'supir_00002_.jpg', 'supir_00003_.webp']);
    expect((await sharp(path.join(outputs(), 'supir_00002_.jpg')).metadata()).format).toBe('jpeg');
  });

  it('accepts a subfolder in the prefix', async () => {
    const ctx = fakeContext(env);
    await runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs, filename_prefix: 'runs/face' }, ctx);
    expect(ctx.files[0]?.filename).toBe('runs/face_00001_.png');
    expect(fs.existsSync(path.join(outputs(), 'runs', 'face_00001_.png'))).toBe(true);
  });

  it('refuses prefixes that leave the outputs folder', async () => {
    for (const prefix of ['../escape', '/tmp/abs', 'a/../../b', 'back\\slash', '']) {
      expect(SaveImage.validate?.({ ...saveArgs, filename_prefix: prefix }, env)?.[0]?.[0], prefix).toBe('filename_prefix');
      const run = runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs, filename_prefix: prefix }, fakeContext(env));
      await expect(run, prefix).rejects.toMatchObject({ input: 'filename_prefix', code: 'BAD_PATH' });
    }
    expect(SaveImage.validate?.({ ...saveArgs, filename_prefix: 'ok/name' }, env)).toEqual([]);
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-outside-'));
    cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }));
    fs.symlinkSync(outside, path.join(outputs(), 'link'));
    const viaLink = runNode(SaveImage, { image: random8(1, 3, 4, 4), ...saveArgs, filename_prefix: 'link/x' }, fakeContext(env));
    await expect(viaLink).rejects.toMatchObject({ code: 'BAD_PATH' });
    expect(fs.readdirSync(outside)).toEqual([]);
  });
});

describe('PreviewImage', () => {
  it('writes unique PNGs into temp and records them', async () => {
    const ctx = fakeContext(env);
    await runNode(PreviewImage, { image: random8(2, 3, 6, 9) }, ctx);
    expect(ctx.files).toHaveLength(2);
    expect(new Set(ctx.files.map((f) => f.filename)).size).toBe(2);
    for (const file of ctx.files) {
      expect(file).toMatchObject({ folder: 'temp', kind: 'image', width: 9, height: 6 });
      const bytes = fs.readFileSync(path.join(env.dirs.folders.temp, file.filename));
      expect(readPngTextChunks(bytes)).toEqual({});
    }
    expect(fs.readdirSync(outputs())).toEqual([]);
  });
});

describe('LoadImage', () => {
  const inputs = (): string => env.dirs.folders.inputs;
  const spec = LoadImage.widgets.image!;

  it('lists image files of the inputs folder as its options', () => {
    fs.mkdirSync(path.join(inputs(), 'sub'));
    for (const name of ['b.png', 'a.JPG', 'notes.txt', 'sub/c.tiff', '.hidden.png']) fs.writeFileSync(path.join(inputs(), name), 'x');
    expect(spec.kind === 'COMBO' && typeof spec.options === 'function' && spec.options(env)).toEqual(['a.JPG', 'b.png', 'sub/c.tiff']);
    expect(checkWidgetValue(spec, 'notes.txt', env)).toMatch(/not in the list/);
  });

  it('decodes the chosen file', async () => {
    const image = random8(1, 3, 6, 8);
    fs.writeFileSync(path.join(inputs(), 'photo.png'), await encodeImage(image, 'png'));
    const out = await runNode(LoadImage, { image: 'photo.png' }, fakeContext(env));
    expect(Array.from((out.image as ImageTensor).data)).toEqual(Array.from(image.data));
  });

  it('fingerprints by content: same bytes, same print; new bytes, new print', async () => {
    const file = path.join(inputs(), 'photo.png');
    fs.writeFileSync(file, await encodeImage(random8(1, 3, 6, 8, 1), 'png'));
    const first = await LoadImage.fingerprint!({ image: 'photo.png' }, env);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await LoadImage.fingerprint!({ image: 'photo.png' }, env)).toBe(first);
    fs.writeFileSync(path.join(inputs(), 'copy.png'), fs.readFileSync(file));
    expect(await LoadImage.fingerprint!({ image: 'copy.png' }, env)).toBe(first);
    fs.writeFileSync(file, await encodeImage(random8(1, 3, 6, 8, 2), 'png'));
    expect(await LoadImage.fingerprint!({ image: 'photo.png' }, env)).not.toBe(first);
  });

  it('reports missing files and paths that escape, naming the image input', async () => {
    expect(LoadImage.validate!({ image: 'missing.png' }, env)).toEqual([['image', expect.stringMatching(/does not exist/)]]);
    expect(LoadImage.validate!({ image: '' }, env)[0]?.[0]).toBe('image');
    fs.writeFileSync(path.join(env.dirs.root, 'secret.png'), await encodeImage(random8(1, 3, 2, 2), 'png'));
    expect(LoadImage.validate!({ image: '../secret.png' }, env)[0]?.[0]).toBe('image');
    const escape = runNode(LoadImage, { image: '../secret.png' }, fakeContext(env));
    await expect(escape).rejects.toMatchObject({ input: 'image', code: 'BAD_PATH' });
    fs.symlinkSync(path.join(env.dirs.root, 'secret.png'), path.join(inputs(), 'link.png'));
    await expect(runNode(LoadImage, { image: 'link.png' }, fakeContext(env))).rejects.toMatchObject({ code: 'BAD_PATH' });
    await expect(LoadImage.fingerprint!({ image: 'link.png' }, env)).rejects.toBeInstanceOf(InputError);
  });

  it('names the image input when the file is not an image or is too large', async () => {
    fs.writeFileSync(path.join(inputs(), 'broken.png'), 'not a png at all');
    await expect(runNode(LoadImage, { image: 'broken.png' }, fakeContext(env))).rejects.toMatchObject({
      input: 'image',
      code: 'BAD_IMAGE',
      message: expect.stringMatching(/^input 'image': "broken\.png" is not a readable image/),
    });
    fs.writeFileSync(path.join(inputs(), 'big.png'), await encodeImage(random8(1, 3, 20, 20), 'png'));
    const small = { ...env, limits: { ...DEFAULT_LIMITS, maxPixels: 399 } };
    await expect(runNode(LoadImage, { image: 'big.png' }, fakeContext(small))).rejects.toMatchObject({ input: 'image', code: 'TOO_LARGE' });
  });

  it('loads a real photograph', async () => {
    const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const photo = path.resolve(repoRoot, 'assets/inputs/astronaut.png');
    fs.copyFileSync(photo, path.join(inputs(), 'astronaut.png'));
    const image = (await runNode(LoadImage, { image: 'astronaut.png' }, fakeContext(env))).image as ImageTensor;
    expect([image.n, image.c, image.h, image.w]).toEqual([1, 3, 512, 512]);
    const mean = image.data.reduce((a, b) => a + b, 0) / image.data.length;
    expect(mean).toBeGreaterThan(0.1);
    expect(mean).toBeLessThan(0.9);
  });
});
