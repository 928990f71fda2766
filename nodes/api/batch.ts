/**
 * Batches: a node that lists files (Load Images (folder)) makes the engine copy it and everything
 * downstream once per file, as a sweep copies a swept node once per value (server/engine/batch.ts).
 * These types are what a node sees of that: the item its branch runs for.
 */

/** One image of a batch, as the nodes of its branch see it (`NodeContext.batch`). */
export interface BatchItem {
  /** The id of the node that listed the batch. */
  node: string;
  /** 0-based number of the item among this run's items (its branch number). */
  index: number;
  /** 1-based position of the file in the folder's sorted list, before start/limit: `{index}`. */
  position: number;
  /** The file relative to the batch's folder, e.g. `scan_001.png` or `box 2/scan_001.png`. */
  source: string;
  /** `source` without its extension: `{name}` in Save Image's prefix. */
  name: string;
  /** The file relative to the inputs folder. */
  file: string;
}

/** A listed file, before the engine numbers it into a BatchItem. */
export type BatchEntry = Pick<BatchItem, 'position' | 'source' | 'name' | 'file'>;

/** What a batch source lists: its entries, or which widget is wrong and why. */
export type BatchListing = { entries: BatchEntry[] } | { input: string; reason: string };

/** The most images one batch may run; split a larger folder with start and limit. */
export const MAX_BATCH_ITEMS = 5000;
