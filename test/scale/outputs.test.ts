import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataDirs, type DataDirs } from '../../nodes/api/data-dirs.ts';
import { OutputStore } from '../../server/scale/outputs.ts';
import { listTree, startRedis, type TestRedis } from './harness.ts';

let redis: TestRedis;
let client: Redis;
let root: string;
let dirs: DataDirs;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-outputs-'));
  dirs = createDataDirs(root);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("workers' files on the server", () => {
  it('gives each name of a prompt one final name: a retried attempt overwrites, another prompt gets the next number', async () => {
    const store = new OutputStore(dirs, client);
    fs.mkdirSync(path.join(dirs.folders.outputs, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dirs.folders.outputs, 'sub', 'p_00007_.png'), 'already there');
    const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

    const first = await store.put('prompt-a', 'outputs', 'sub/p_00001_.png', bytes('attempt 1'));
    expect(first).toBe('sub/p_00008_.png');
    // The same prompt's file again (its retry): same name, written over.
    expect(await store.put('prompt-a', 'outputs', 'sub/p_00001_.png', bytes('attempt 2'))).toBe(first);
    expect(fs.readFileSync(path.join(dirs.folders.outputs, first), 'utf8')).toBe('attempt 2');
    // Another prompt with the same scratch name, several at once: distinct names.
    const others = await Promise.all(['b', 'c', 'd'].map((p) => store.put(`prompt-${p}`, 'outputs', 'sub/p_00001_.png', bytes(p))));
    expect(new Set(others)).toEqual(new Set(['sub/p_00009_.png', 'sub/p_00010_.png', 'sub/p_00011_.png']));
    // Names without Save Image's counter are kept when free, numbered when taken.
    expect(await store.put('prompt-a', 'outputs', 'batch/scan_001.png', bytes('x'))).toBe('batch/scan_001.png');
    expect(await store.put('prompt-b', 'outputs', 'batch/scan_001.png', bytes('y'))).toBe('batch/scan_001-2.png');
    expect(await store.put('prompt-a', 'temp', 'preview_1.png', bytes('t'))).toBe('preview_1.png');
    expect(listTree(dirs.folders.outputs)).toEqual(['batch/scan_001-2.png', 'batch/scan_001.png', 'sub/p_00007_.png', 'sub/p_00008_.png', 'sub/p_00009_.png', 'sub/p_00010_.png', 'sub/p_00011_.png']);
    // Once the prompt is recorded its names are forgotten.
    await store.forget('prompt-a');
    expect(await client.exists('supir:files:prompt-a')).toBe(0);
  });

  it("keeps a file's own name (Save Image's {name} in a batch) and writes over it: a retried or re-queued image leaves no -2 copy", async () => {
    const store = new OutputStore(dirs, client);
    const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
    fs.mkdirSync(path.join(dirs.folders.outputs, 'own'), { recursive: true });
    fs.writeFileSync(path.join(dirs.folders.outputs, 'own', 'scan_1.png'), 'an earlier run');
    expect(await store.put('batch.i0', 'outputs', 'own/scan_1.png', bytes('attempt 1'), true)).toBe('own/scan_1.png');
    expect(await store.put('batch.i0', 'outputs', 'own/scan_1.png', bytes('attempt 2'), true)).toBe('own/scan_1.png');
    expect(await store.put('other.i0', 'outputs', 'own/scan_1.png', bytes('another batch'), true)).toBe('own/scan_1.png');
    expect(listTree(path.join(dirs.folders.outputs, 'own'))).toEqual(['scan_1.png']);
    expect(fs.readFileSync(path.join(dirs.folders.outputs, 'own', 'scan_1.png'), 'utf8')).toBe('another batch');
    await expect(store.put('batch.i0', 'outputs', '../escape.png', new Uint8Array(1), true)).rejects.toThrow(/relative path/);
  });

  it('refuses names that leave the folder', async () => {
    const store = new OutputStore(dirs, client);
    await expect(store.put('p', 'outputs', '../escape.png', new Uint8Array(1))).rejects.toThrow(/relative path/);
  });
});
