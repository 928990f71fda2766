/** The data folders nodes and the API may read and write. Nothing outside them is ever touched. */
export const DATA_FOLDERS = ['inputs', 'outputs', 'temp', 'workflows', 'models'] as const;
export type DataFolder = (typeof DATA_FOLDERS)[number];

/** A file a node wrote or showed, as the API and history refer to it. */
export interface FileRef {
  folder: DataFolder;
  /** Relative to the folder, forward slashes. */
  filename: string;
  kind: 'image';
  width?: number;
  height?: number;
  /** Numbers behind the image, when it shows a table (Metrics): the editor offers them as CSV/JSON. */
  table?: TableData;
  /** Which side of a pair the image is (Compare Images): the editor shows the two under an A/B slider. */
  compare?: 'a' | 'b';
  /** A short caption for the image, e.g. Compare Images' labels. */
  label?: string;
}

/** A small table: column names and rows of cells (null where a value does not apply). */
export interface TableData {
  columns: string[];
  rows: Array<Array<string | number | null>>;
}
