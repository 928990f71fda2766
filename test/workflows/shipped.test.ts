import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { runWorkflowFile } from '../../server/cli/run.ts';

const DIR = path.resolve(import.meta.dirname, '../../workflows');
const shipped = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));

describe('shipped workflows', () => {
  it('there is at least one', () => {
    expect(shipped.length).toBeGreaterThan(0);
  });

  for (const file of shipped) {
    it(`${file} runs on a fresh data folder and writes decodable images`, async () => {
      const data = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-wf-'));
      const summary = await runWorkflowFile({ file: path.join(DIR, file), sets: [], json: true, data }, () => undefined, new AbortController().signal);
      expect(summary.error).toBeUndefined();
      expect(summary.status).toBe('success');
      const files = Object.values(summary.outputs).flat();
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect((await sharp(f).metadata()).width).toBeGreaterThan(0);
    });
  }
});
