/**
 * The model library, as nodes see it: the models that ship with the product (converted on first
 * use) and the ONNX files the user put in the models folder. Implemented in server/models.
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
}

export interface ModelLibrary {
  list(kind: ModelKind): ModelEntry[];
  /** The ONNX file for `name`, converting or unpacking it first when needed; with its content hash. */
  resolve(name: string): Promise<{ path: string; hash: string; entry: ModelEntry }>;
}
