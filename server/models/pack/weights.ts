import { StudioError } from '../../../nodes/api/errors.ts';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { lazyWeight, weightsFromMap, type Weights, type WeightTensor } from '../onnx/layers.ts';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Every float tensor under the given key prefixes, as lazy float32 weights: each is read once here
 * to hash it (then dropped) and again, one at a time, when the model is written (onnx/export.ts).
 * So `ck` must stay open until the graph built from these weights has been written.
 */
export async function readWeights(ck: Checkpoint, prefixes: readonly string[]): Promise<Weights> {
  const map = new Map<string, WeightTensor>();
  for (const key of ck.keys()) {
    if (!prefixes.some((p) => key.startsWith(p))) continue;
    // Integer buffers (CLIP's position_ids) are not weights; the graphs build them themselves.
    if (!FLOAT_DTYPES.has(ck.dtype(key))) continue;
    const dims = ck.shape(key);
    map.set(key, { data: await lazyWeight(() => ck.float32(key), dims, `tensor '${key}' of ${ck.source(key)}`), dims });
  }
  if (map.size === 0) throw new StudioError('NOT_FOUND', `${ck.path} has no weights under ${prefixes.join(', ')}`);
  return weightsFromMap(map, ck.path);
}
