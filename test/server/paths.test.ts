import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkflow, pngBytes, startTestServer, userInputs, type TestServer } from './helpers.ts';

/**
 * Files beside the data root stand for everything outside it: no request may read, write or
 * even reveal them, however the path is spelled.
 */
describe('paths outside the data folders', () => {
  let server: TestServer;
  let secretPng: string;
  let secretBytes: Buffer;
  let before: string[];

  beforeAll(async () => {
    server = await startTestServer();
    secretPng = path.join(server.parent, 'secret.png');
    secretBytes = await pngBytes(9, 9);
    fs.writeFileSync(secretPng, secretBytes);
    fs.writeFileSync(path.join(server.parent, 'secret.json'), '{"format":"supir-studio/workflow"}');
    before = snapshot(server.parent);
  });
  afterAll(() => server.close());

  /** Every file under the parent except the data root, with its content. */
  function snapshot(dir: string): string[] {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.name !== 'data')
      .map((e) => `${e.name}:${e.isFile() ? fs.readFileSync(path.join(dir, e.name)).toString('base64') : 'dir'}`)
      .sort();
  }

  const spellings = [
    '../secret.png',
    '../../secret.png',
    '%2e%2e%2fsecret.png',
    '%2E%2E%2F%2E%2E%2Fsecret.png',
    '..%2f..%2fsecret.png',
    'a%00.png',
    '%00',
    '..\\..\\secret.png',
  ];

  it('never serves a file from outside through /api/view', async () => {
    const absolute = encodeURIComponent(secretPng);
    for (const folder of ['outputs', 'inputs', 'temp']) {
      for (const file of [...spellings, absolute, `${encodeURIComponent('/')}..${encodeURIComponent('/')}secret.png`]) {
        const res = await server.api(`/api/view?folder=${folder}&file=${file}`);
        expect([400, 404], `${folder} ${file}`).toContain(res.status);
        const body = Buffer.from(await res.arrayBuffer());
        expect(body.includes(secretBytes)).toBe(false);
      }
      const sub = await server.api(`/api/view?folder=${folder}&subfolder=..&file=secret.png`);
      expect(sub.status).toBe(400);
    }
    for (const folder of ['workflows', '..', '%2e%2e', 'data']) {
      expect((await server.api(`/api/view?folder=${folder}&file=secret.png`)).status).toBe(400);
    }
    // A name that only looks encoded is an ordinary (missing) file.
    expect((await server.api('/api/view?file=%252e%252e%252fsecret.png')).status).toBe(404);
    expect((await server.api('/api/view')).status).toBe(400);
  });

  it('refuses symlinks inside a data folder that lead outside', async () => {
    fs.symlinkSync(secretPng, path.join(server.dirs.folders.outputs, 'link.png'));
    fs.symlinkSync(server.parent, path.join(server.dirs.folders.outputs, 'linkdir'), 'dir');
    for (const file of ['link.png', 'linkdir/secret.png']) {
      const res = await server.api(`/api/view?file=${encodeURIComponent(file)}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'BAD_PATH' } });
    }
    fs.symlinkSync(server.parent, path.join(server.dirs.folders.inputs, 'escape'), 'dir');
    const up = await server.upload('planted.png', await pngBytes(4, 4), '&subfolder=escape');
    expect(up.status).toBe(400);
    expect(fs.existsSync(path.join(server.parent, 'planted.png'))).toBe(false);
  });

  it('never writes outside through /api/upload', async () => {
    const bytes = await pngBytes(4, 4);
    for (const name of [...spellings.map(decodeURIComponentSafe), secretPng, '/tmp/evil.png', 'C:/evil.png', 'sub/evil.png']) {
      const res = await server.upload(name, bytes);
      expect(res.status, name).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'BAD_PATH' } });
    }
    for (const sub of ['..', '../..', '/tmp', 'a/../..', 'a\u0000b']) {
      const res = await server.upload('evil.png', bytes, `&subfolder=${encodeURIComponent(sub)}`);
      expect(res.status, sub).toBe(400);
    }
    // The same names sent with the encoding left in the query string.
    for (const raw of ['%2e%2e%2fevil.png', '..%2F..%2Fevil.png', 'evil%00.png']) {
      const res = await server.api(`/api/upload?filename=${raw}`, { method: 'POST', body: bytes });
      expect(res.status, raw).toBe(400);
    }
    expect(snapshot(server.parent)).toEqual(before);
    expect(userInputs(server).filter((f) => f.endsWith('.png'))).toEqual([]);
  });

  it('never reads or writes outside through /api/workflows', async () => {
    const wf = buildWorkflow([{ id: 1, type: 'PrimitiveInt' }]);
    for (const name of ['..%2fsecret', '%2e%2e%2fsecret', '%2e%2e', '..', '.hidden', 'a%00b', 'a%2fb', '%2ftmp%2fx', 'x'.repeat(200), 'bad:name', 'trailing.']) {
      const put = await server.api(`/api/workflows/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wf) });
      expect([400, 404], `PUT ${name}`).toContain(put.status);
      const get = await server.api(`/api/workflows/${name}`);
      expect([400, 404], `GET ${name}`).toContain(get.status);
      expect(await get.text()).not.toContain('supir-studio/workflow');
      const del = await server.api(`/api/workflows/${name}`, { method: 'DELETE' });
      expect([400, 404], `DELETE ${name}`).toContain(del.status);
    }
    expect(snapshot(server.parent)).toEqual(before);
    expect(fs.readdirSync(server.dirs.folders.workflows)).toEqual([]);
  });
});

describe('upload names the file system would refuse', () => {
  let server: TestServer;
  let png: Buffer;

  beforeAll(async () => {
    server = await startTestServer();
    png = await pngBytes(4, 4);
  });
  afterAll(() => server.close());

  const refused = async (name: string, query: string, message: RegExp): Promise<void> => {
    const res = await server.upload(name, png, query);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status, `${name.slice(0, 40)} ${query.slice(0, 60)}: ${JSON.stringify(body)}`).toBe(400);
    expect(body.error.code).toBe('BAD_PATH');
    expect(body.error.message).toMatch(message);
  };

  it('answers 400 for a dangling or looping symlink as subfolder, and for a file used as one', async () => {
    const inputs = server.dirs.folders.inputs;
    const nowhere = path.join(server.parent, 'nowhere');
    fs.symlinkSync(nowhere, path.join(inputs, 'dangling'));
    fs.symlinkSync('loop', path.join(inputs, 'loop'));
    fs.writeFileSync(path.join(inputs, 'plain.png'), png);
    await refused('a.png', '&subfolder=dangling', /"dangling", a symlink that leads nowhere/);
    await refused('a.png', '&subfolder=dangling/deeper', /"dangling", a symlink that leads nowhere/);
    await refused('a.png', '&subfolder=loop', /"loop", a symlink that leads nowhere/);
    await refused('a.png', '&subfolder=plain.png', /uses "plain.png" as a folder, but it is a file/);
    // A dangling symlink in the file's own place is refused too, with or without overwrite.
    fs.symlinkSync(nowhere, path.join(inputs, 'ghost.png'));
    await refused('ghost.png', '&overwrite=1', /"ghost.png", a symlink that leads nowhere/);
    expect(fs.existsSync(nowhere)).toBe(false);
    expect((await server.api('/api/view?folder=inputs&file=dangling%2Fa.png')).status).toBe(400);
  });

  it('answers 400 for names and subfolder parts over 255 bytes, and takes the longest ones allowed', async () => {
    await refused(`${'x'.repeat(300)}.png`, '', /filename is 304 bytes long; a file or folder name may have at most 255/);
    await refused('a.png', `&subfolder=${'y'.repeat(300)}`, /subfolder is 300 bytes long; a file or folder name may have at most 255/);
    await refused('a.png', `&subfolder=ok/${'y'.repeat(256)}/z`, /subfolder has a part of 256 bytes/);
    // Uploads leave room for the " (n)" of a name already taken; bytes count, not characters.
    await refused(`${'x'.repeat(246)}.png`, '', /filename is 250 bytes long; an uploaded file's name may have at most 200/);
    await refused(`${'é'.repeat(100)}.png`, '', /filename is 204 bytes long/);
    const longest = `${'x'.repeat(196)}.png`;
    const segment = 's'.repeat(255);
    for (const expected of [longest, `${'x'.repeat(196)} (1).png`]) {
      const res = await server.upload(longest, png, `&subfolder=${segment}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ name: expected, subfolder: segment });
    }
    expect(fs.readdirSync(path.join(server.dirs.folders.inputs, segment)).sort()).toEqual([`${'x'.repeat(196)} (1).png`, longest]);
    const view = await server.api(`/api/view?folder=inputs&file=${'x'.repeat(300)}.png`);
    expect(view.status).toBe(400);
    expect(await view.json()).toMatchObject({ error: { code: 'BAD_PATH' } });
  });
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
