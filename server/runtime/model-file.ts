/**
 * What the runtime needs to know about a model file before opening it: that it exists, a stamp
 * that changes when it is rewritten (the session cache key), and an estimate of the memory a
 * session on it takes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StudioError } from '../../nodes/api/errors.ts';

export interface ModelFile {
  path: string;
  /** Changes when the file is replaced or rewritten. */
  stamp: string;
  /** Model file bytes (and external weights beside it) x 2: weights once as loaded, once as prepacked or copied to the device. */
  estimatedBytes: number;
}

/** The usual names of an ONNX model's external-data file. */
const EXTERNAL_DATA = (base: string): string[] => [`${base}.data`, `${base}_data`, `${path.parse(base).name}.data`];

export function statModel(modelPath: string): ModelFile {
  const file = path.resolve(modelPath);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new StudioError('NOT_FOUND', `model file not found: ${file}`);
  }
  if (!stat.isFile()) throw new StudioError('BAD_INPUT', `model path is not a file: ${file}`);
  let bytes = stat.size;
  for (const name of new Set(EXTERNAL_DATA(path.basename(file)))) {
    try {
      bytes += fs.statSync(path.join(path.dirname(file), name)).size;
    } catch {
      // No external data under that name: the common case.
    }
  }
  return { path: file, stamp: `${file}|${stat.mtimeMs}|${stat.size}`, estimatedBytes: bytes * 2 };
}

/** onnxruntime repeats the path in its message; keep only what went wrong. */
export function modelError(file: string, message: string): StudioError {
  const reason = message.replace(/^Load model from .*? failed:\s*/s, '').trim();
  return new StudioError('BAD_INPUT', `cannot load model ${file}: ${reason}`);
}
