/**
 * GET /api/supir/estimate on a real tiny pack converted into the server's models folder: the JSON
 * follows the pack's manifest and the image size, the parameters are checked, a missing pack is a
 * 404 that says how to make it, and the route is behind the same access checks as every /api route.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackManifest } from '../../nodes/supir/lib/pack-manifest.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import type { SupirEstimateJson } from '../../server/protocol/supir-estimate.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { startTestServer, type TestServer } from './helpers.ts';

const PACK = 'supir-tiny';
const STAGES = ['stage 1 (VAE)', 'text encode', 'sampling', 'decode'];

describe('GET /api/supir/estimate', () => {
  let server: TestServer;
  let manifest: PackManifest;

  beforeAll(async () => {
    server = await startTestServer();
    const tmp = fs.mkdtempSync(path.join(server.parent, 'pack-src-'));
    const out = path.join(server.dirs.folders.models, PACK);
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, tmp, { fitText: true })), out, ...TINY_COMPILE_OPTIONS });
    manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as PackManifest;
  }, 180_000);
  afterAll(async () => {
    await server?.close();
  });

  async function estimate(query: string): Promise<SupirEstimateJson> {
    const res = await server.api(`/api/supir/estimate?${query}`);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body as SupirEstimateJson;
  }

  async function refused(query: string, status: number): Promise<{ code: string; message: string }> {
    const res = await server.api(`/api/supir/estimate?${query}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status, JSON.stringify(body)).toBe(status);
    return body.error;
  }

  it('estimates the pack at 1024x1024 by default, from its manifest', async () => {
    const res = await server.api(`/api/supir/estimate?pack=${PACK}`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const e = (await res.json()) as SupirEstimateJson;
    expect(e).toMatchObject({ pack: PACK, precision: manifest.precision, width: 1024, height: 1024 });
    expect(e.stages.map((s) => s.stage)).toEqual(STAGES);
    for (const s of e.stages) {
      expect(s.activations).toBeGreaterThan(0);
      expect(s.peak).toBe(s.weights + s.activations);
    }
    expect(e.peak).toBe(Math.max(...e.stages.map((s) => s.peak)));
    // The weights are the manifest's bytes of the components each stage loads.
    const bytes = (name: string): number => manifest.components[name]!.bytes;
    expect(e.stages.find((s) => s.stage === 'sampling')!.weights).toBe(bytes('denoiser_step'));
    expect(e.stages.find((s) => s.stage === 'decode')!.weights).toBe(bytes('vae_decoder'));
    expect(e.stages.find((s) => s.stage === 'text encode')!.weights).toBe(bytes('clip_l') + bytes('clip_bigg'));
    const sampling = e.stages.find((s) => s.stage === 'sampling')!;
    const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
    expect(e.text).toBe(`about ${gb(e.peak)} at 1024x1024 (${manifest.precision}; sampling ${gb(sampling.peak)}); tiled VAE ${e.tiledVae ? 'on' : 'off'}`);
  });

  it('grows about 4x in activations from 512x512 to 1024x1024 (every stage O(pixels))', async () => {
    const small = await estimate(`pack=${PACK}&width=512&height=512`);
    const large = await estimate(`pack=${PACK}&width=1024&height=1024`);
    expect(small).toMatchObject({ width: 512, height: 512 });
    expect(small.text).toContain(`at 512x512 (${manifest.precision};`);
    const act = (e: SupirEstimateJson, stage: string): number => e.stages.find((s) => s.stage === stage)!.activations;
    expect(act(large, 'sampling') / act(small, 'sampling')).toBeGreaterThan(3.8);
    expect(act(large, 'sampling') / act(small, 'sampling')).toBeLessThan(4.2);
    expect(act(large, 'decode') / act(small, 'decode')).toBeGreaterThan(3.8);
    expect(act(large, 'decode') / act(small, 'decode')).toBeLessThan(4.2);
    // The tiny pack's weights are a few MB, so its peak is mostly activations.
    expect(large.peak / small.peak).toBeGreaterThan(3.5);
    expect(large.peak / small.peak).toBeLessThan(4.2);
    // Width and height are taken apart: 1024x512 is half of 1024x1024.
    const wide = await estimate(`pack=${PACK}&width=1024&height=512`);
    expect(wide.text).toContain('at 1024x512');
    expect(act(large, 'sampling') / act(wide, 'sampling')).toBeGreaterThan(1.9);
    expect(act(large, 'sampling') / act(wide, 'sampling')).toBeLessThan(2.1);
  });

  it('assumes the tiled VAE above the size whose untiled VAE pass passes 2 GB, which bounds the VAE stages', async () => {
    const at1024 = await estimate(`pack=${PACK}`);
    const above = at1024.tiledVaeAbove;
    expect(above % 64).toBe(0);
    expect(above).toBeGreaterThanOrEqual(1024);
    expect(at1024.tiledVae).toBe(false);
    expect(at1024.text).toMatch(/tiled VAE off$/);
    const at = await estimate(`pack=${PACK}&width=${above}&height=${above}`);
    expect(at.tiledVae).toBe(false);
    const past = await estimate(`pack=${PACK}&width=${above + 64}&height=${above + 64}`);
    expect(past.tiledVae).toBe(true);
    expect(past.text).toMatch(/tiled VAE on$/);
    const decode = (e: SupirEstimateJson): number => e.stages.find((s) => s.stage === 'decode')!.activations;
    expect(decode(at)).toBeLessThanOrEqual(2e9);
    // Tiled, the VAE pass no longer grows with the image: 4096 px decodes in what 2048 px does.
    const big = await estimate(`pack=${PACK}&width=4096&height=4096`);
    const bigger = await estimate(`pack=${PACK}&width=8000&height=8000`);
    expect(big.tiledVae && bigger.tiledVae).toBe(true);
    expect(decode(bigger)).toBe(decode(big));
    expect(decode(big)).toBeLessThan(decode(at));
  });

  it('refuses bad sizes with 400 naming the parameter', async () => {
    for (const [query, name] of [
      ['width=1000.5', 'width'],
      ['width=0', 'width'],
      ['width=-8', 'width'],
      ['width=1001', 'width'],
      ['width=abc', 'width'],
      ['width=', 'width'],
      ['height=12', 'height'],
      ['height=1e3', 'height'],
      ['width=8&width=16', 'width'],
      ['height=40000', 'height'],
    ] as const) {
      const err = await refused(`pack=${PACK}&${query}`, 400);
      expect(err.code, query).toBe('BAD_INPUT');
      expect(err.message, query).toContain(name);
      expect(err.message, query).not.toContain(name === 'width' ? 'height' : 'width');
    }
    // Over the pixel limit (64 MP by default) with both sides within theirs.
    const err = await refused(`pack=${PACK}&width=16384&height=16384`, 400);
    expect(err.message).toMatch(/width x height is 16384x16384 = 268435456 pixels; .* at most 64000000 \(maxPixels\)/);
    expect((await refused('width=1024', 400)).message).toContain('"pack" is required');
    expect((await refused(`pack=${PACK}&pack=other`, 400)).message).toContain('"pack"');
  });

  it('answers 404 naming the pack and the command that makes it when there is none', async () => {
    const models = server.dirs.folders.models;
    fs.mkdirSync(path.join(models, 'empty-folder'));
    fs.writeFileSync(path.join(models, 'a-file.onnx'), 'not a pack');
    for (const pack of ['SUPIR-v0Q', 'empty-folder', 'a-file.onnx', 'sub/none']) {
      const err = await refused(`pack=${encodeURIComponent(pack)}`, 404);
      expect(err.code, pack).toBe('NOT_FOUND');
      expect(err.message, pack).toContain(`no SUPIR model pack "${pack}"`);
      expect(err.message, pack).toContain(`npx supir-studio convert --supir SUPIR-v0Q.ckpt --sdxl sd_xl_base_1.0_0.9vae.safetensors --out ${path.join(models, pack)}`);
    }
  });

  it('says which pack is incomplete (404) or damaged (400)', async () => {
    const models = server.dirs.folders.models;
    fs.cpSync(path.join(models, PACK), path.join(models, 'no-denoiser'), { recursive: true });
    fs.rmSync(path.join(models, 'no-denoiser', manifest.components.denoiser_step!.file));
    const missing = await refused('pack=no-denoiser', 404);
    expect(missing.message).toContain('no SUPIR model pack "no-denoiser"');
    expect(missing.message).toContain(`'denoiser_step' is missing its file ${manifest.components.denoiser_step!.file}`);
    expect(missing.message).toContain('npx supir-studio convert');
    fs.cpSync(path.join(models, PACK), path.join(models, 'damaged'), { recursive: true });
    fs.appendFileSync(path.join(models, 'damaged', manifest.components.vae_decoder!.file), 'x');
    const damaged = await refused('pack=damaged', 400);
    expect(damaged.code).toBe('BAD_INPUT');
    expect(damaged.message).toMatch(/^model pack "damaged" cannot be used: .*'vae_decoder'.*incomplete or replaced; make it with: npx supir-studio convert/);
  });

  it('never reads outside the models folder', async () => {
    for (const pack of ['../inputs', '/etc', 'a/../../x']) {
      const err = await refused(`pack=${encodeURIComponent(pack)}`, 400);
      expect(err.code, pack).toBe('BAD_PATH');
    }
    // A symlink out of the models folder is refused like any other escape.
    fs.symlinkSync(server.parent, path.join(server.dirs.folders.models, 'escape'));
    expect((await refused('pack=escape', 400)).code).toBe('BAD_PATH');
  });

  it('is behind the same origin and token checks as every /api route', async () => {
    const res = await server.api(`/api/supir/estimate?pack=${PACK}`, { headers: { Origin: 'http://evil.example' } });
    expect(res.status).toBe(403);
    const guarded = await startTestServer({ auth: 'token' });
    try {
      expect((await guarded.api('/api/supir/estimate?pack=x')).status).toBe(401);
      const ok = await guarded.api('/api/supir/estimate?pack=x', { headers: { Authorization: `Bearer ${guarded.token}` } });
      expect(ok.status).toBe(404);
    } finally {
      await guarded.close();
    }
  });
});
