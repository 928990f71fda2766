/**
 * The model library, as nodes see it: the image models that ship with the product (ESRGAN and
 * MAXIM from npm, converted on first use) and the ONNX files the user put in the models folder. Implemented in server/models.
 */
export type ModelKind = 'upscale';

export interface ModelEntry {
  /** What the node's combo shows and the workflow stores: "esrgan-medium x4", "my-model.onnx". */
  name: string;
  kind: ModelKind;
  /** Output pixels per input pixel along each side, where known. */
  scale?: number;
  /** Shipped with the product (from an npm package) or found in the models folder. */
  source: 'shipped' | 'user';
  description?: string;
  /**
   * Set for models converted for one square input size (MAXIM): the side must be a multiple of
   * this, and resolve() needs the side wanted.
   */
  tileMultiple?: number;
}

export interface ModelLibrary {
  list(kind: ModelKind): ModelEntry[];
  /**
   * The ONNX file for `name`, converting or unpacking it first when needed; with its content hash.
   * `tile` picks the input side of a model made for one size (entry.tileMultiple).
   */
  resolve(name: string, opts?: { tile?: number }): Promise<{ path: string; hash: string; entry: ModelEntry }>;
}
