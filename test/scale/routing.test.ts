import { describe, expect, it } from 'vitest';
import { parseRedisUrl } from '../../server/scale/redis-url.ts';
import { chooseWorker, packsOf, shouldHandBack } from '../../server/scale/routing.ts';
import type { WorkerAnnouncement } from '../../server/scale/wire.ts';

const worker = (id: string, packs: string[], running: string | null = null, free = 1e9): WorkerAnnouncement => ({
  id,
  host: 'h',
  pid: 1,
  provider: 'cuda',
  device: 0,
  free_memory: free,
  packs,
  running,
  done: 0,
  started_at: 0,
});

describe('routing prompts to workers', () => {
  const supir = 'LoadSupirModel:supir-v0q';
  it('names the packs a prompt loads', () => {
    expect(packsOf({ '1': { class_type: 'LoadSupirModel', inputs: { pack: 'supir-v0q', provider: 'auto' } }, '2': { class_type: 'SaveImage', inputs: {} } })).toEqual([supir]);
    expect(packsOf({ '1': { class_type: 'LoadUpscaleModel', inputs: { model_name: ['9', 0] } } })).toEqual([]);
  });

  it('prefers a worker with the pack loaded: idle before busy, then the most free memory', () => {
    const workers = [worker('cold', []), worker('busy', [supir], 'p1', 9e9), worker('idle-small', [supir], null, 1e9), worker('idle-big', [supir], null, 2e9)];
    expect(chooseWorker([supir], workers)).toBe('idle-big');
    expect(chooseWorker([supir], workers.slice(0, 2))).toBe('busy');
    expect(chooseWorker([supir], [worker('cold', [])])).toBeNull();
    expect(chooseWorker([], workers)).toBeNull();
  });

  it('hands a job back only while the preferred worker lives, the preference holds, and this worker lacks the pack', () => {
    const job = { prefer: 'gpu0', prefer_until: 2000, packs: [supir] };
    expect(shouldHandBack(job, { id: 'gpu1', packs: [] }, true, 1000)).toBe(true);
    expect(shouldHandBack(job, { id: 'gpu0', packs: [] }, true, 1000)).toBe(false);
    expect(shouldHandBack(job, { id: 'gpu1', packs: [supir] }, true, 1000)).toBe(false);
    expect(shouldHandBack(job, { id: 'gpu1', packs: [] }, false, 1000)).toBe(false);
    expect(shouldHandBack(job, { id: 'gpu1', packs: [] }, true, 2000)).toBe(false);
    expect(shouldHandBack({ packs: [] }, { id: 'gpu1', packs: [] }, true, 1000)).toBe(false);
  });
});

describe('--queue URLs', () => {
  it('reads host, port, database, password and TLS, and never shows the password', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6390', {})).toMatchObject({ host: '127.0.0.1', port: 6390, db: 0, tls: false, display: 'redis://127.0.0.1:6390' });
    const t = parseRedisUrl('rediss://:s3cret@queue.lan/2', {});
    expect(t).toMatchObject({ host: 'queue.lan', port: 6379, db: 2, password: 's3cret', tls: true });
    expect(t.display).toBe('rediss://:***@queue.lan/2');
    expect(parseRedisUrl('redis://q:6379', { SUPIR_REDIS_PASSWORD: 'pw' }).password).toBe('pw');
    expect(() => parseRedisUrl('http://q:6379', {})).toThrow(/redis:\/\//);
  });
});
