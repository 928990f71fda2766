/**
 * A finished run leaves the server near its idle size: after an x4 upscale of a 768 px photo the
 * server (in a process of its own, so that the figures are its alone) holds what it held before
 * plus what the node cache keeps, within a margin of one output image. Before Upscale Image cut its
 * work into short runs, onnxruntime's arena kept the buffers of a 664 px tile's run for as long as
 * the session stayed open: a 1024 px x4 run left an idle server at 5.8 GB (0.27 GB of it cache).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnChildServer, submitPrompt, type ChildServer } from './helpers.ts';

const PHOTO = path.resolve(import.meta.dirname, '../../../shared/testimages/rocket.jpg');
const SIDE = 768;
const SCALE = 4;

interface Sample {
  rss: number;
  cache: number;
}

describe('server memory after a run', () => {
  let root: string;
  let server: ChildServer;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-memory-'));
    server = await spawnChildServer(path.join(root, 'data'));
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
    fs.rmSync(root, { recursive: true, force: true });
  });

  const sample = async (): Promise<Sample> => {
    const info = (await (await fetch(`${server.url}/api/system`)).json()) as { memory: { rss: number }; cache: { bytes: number } };
    return { rss: info.memory.rss, cache: info.cache.bytes };
  };

  const upload = async (name: string, side: number): Promise<void> => {
    const bytes = await sharp(PHOTO).resize(side, side, { fit: 'cover' }).png().toBuffer();
    const res = await fetch(`${server.url}/api/upload?filename=${name}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(res.status).toBe(200);
  };

  /** Runs Load Image → esrgan-medium x4 → Save Image; returns the largest RSS seen while it ran. */
  const upscale = async (image: string): Promise<number> => {
    const { prompt_id } = await submitPrompt(server.url, {
      '1': { class_type: 'LoadImage', inputs: { image } },
      '2': { class_type: 'LoadUpscaleModel', inputs: { model_name: 'esrgan-medium x4', provider: 'cpu' } },
      '3': { class_type: 'UpscaleImage', inputs: { model: ['2', 0], image: ['1', 0], tile_size: 0, overlap: 16 } },
      '4': { class_type: 'SaveImage', inputs: { image: ['3', 0], filename_prefix: 'memory' } },
    });
    let peak = 0;
    for (;;) {
      peak = Math.max(peak, (await sample()).rss);
      const res = await fetch(`${server.url}/api/history/${prompt_id}`);
      if (res.status === 200) {
        expect(((await res.json()) as { status: string }).status).toBe('success');
        return peak;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it(`an x${SCALE} run of a ${SIDE} px photo leaves the server near its idle size plus the cache`, async () => {
    await upload('warm.png', 256);
    await upload('big.png', SIDE);
    // Warm-up: the model converted and open, its tiles at full size, every code path loaded.
    await upscale('warm.png');
    await new Promise((r) => setTimeout(r, 1000));
    const before = await sample();
    const peak = await upscale('big.png');
    await new Promise((r) => setTimeout(r, 2000));
    const after = await sample();
    const outputBytes = 3 * (SIDE * SCALE) ** 2 * 4;
    const cached = after.cache - before.cache;
    const mb = (b: number): number => Math.round(b / 2 ** 20);
    console.log(`RSS before ${mb(before.rss)} MB, peak ${mb(peak)} MB, after ${mb(after.rss)} MB; cache +${mb(cached)} MB; output ${mb(outputBytes)} MB`);
    // The cache keeps the output (and the decoded input) within its budget: that much may stay.
    expect(cached).toBeGreaterThanOrEqual(outputBytes);
    expect(after.rss - before.rss).toBeLessThanOrEqual(cached + outputBytes);
    // While it ran: the output, the cache's copy is the same buffer, a tile's run at a time.
    expect(peak - before.rss).toBeLessThanOrEqual(cached + 4 * outputBytes);
  }, 300_000);
});
