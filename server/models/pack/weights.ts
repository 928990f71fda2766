import { StudioError } from '../../../nodes/api/errors.ts';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { weightsFromMap, type Weights, type WeightTensor } from '../onnx/layers.ts';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Reads every float tensor under the given key prefixes into float32 memory, as the graph builder needs
 * them. One copy: the builder keeps these arrays as its initializers.
 */
export async function readWeights(ck: Checkpoint, prefixes: readonly string[]): Promise<Weights> {
  const map = new Map<string, WeightTensor>();
  for (const key of ck.keys()) {
    if (!prefixes.some((p) => key.startsWith(p))) continue;
    // Integer buffers (CLIP's position_ids) are not weights; the graphs build them themselves.
    if (!FLOAT_DTYPES.has(ck.dtype(key))) continue;
    map.set(key, { data: await ck.float32(key), dims: ck.shape(key) });
  }
  if (map.size === 0) throw new StudioError('NOT_FOUND', `${ck.path} has no weights under ${prefixes.join(', ')}`);
  return weightsFromMap(map, ck.path);
}
