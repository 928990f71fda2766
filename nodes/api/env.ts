import type { DataDirs } from './data-dirs.ts';
import type { ModelLibrary } from './models.ts';
import type { Runtime } from './runtime.ts';

/** Limits that protect the process from input that would exhaust it. */
export interface Limits {
  /** Largest image a node may decode or produce, in pixels (width x height). */
  maxPixels: number;
  /** Longest side a node may decode, in pixels: a 1 x 60,000,000 image is under maxPixels but slow to decode. */
  maxImageSide: number;
}

export const DEFAULT_LIMITS: Limits = { maxPixels: 64_000_000, maxImageSide: 32_768 };

/** What a node may know about the machine it runs on: its data folders and limits. */
export interface NodeEnv {
  dirs: DataDirs;
  limits: Limits;
  /** Model inference; absent where no node needs it (unit tests of image nodes). */
  runtime?: Runtime;
  /** Shipped and user models; absent where no node needs it. */
  models?: ModelLibrary;
}
