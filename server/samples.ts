import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataDirs } from '../nodes/api/data-dirs.ts';

const SAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../assets/inputs');

/**
 * Copies the sample photos into the inputs folder when they are not there yet, so that the shipped
 * workflows run on a fresh machine. Existing files are never overwritten.
 */
export function seedSampleInputs(dirs: DataDirs): void {
  for (const name of fs.readdirSync(SAMPLES)) {
    if (!name.endsWith('.png')) continue;
    const target = path.join(dirs.folders.inputs, name);
    if (!fs.existsSync(target)) fs.copyFileSync(path.join(SAMPLES, name), target);
  }
}
