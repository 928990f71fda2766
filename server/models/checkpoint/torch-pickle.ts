/**
 * The allow-list for PyTorch checkpoint pickles: the handful of names torch.save writes for a state
 * dict, each implemented here as a plain data constructor. Any other name is refused the moment the
 * pickle mentions it, before the rest of the stream is even read, so `os.system` & co. never get a
 * stand-in, let alone a call.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { SafetensorsDType } from './safetensors.ts';
import { refused, typeName, unpickle } from './pickle.ts';

/** A storage referenced by a persistent id: the zip entry `<archive>/data/<key>`. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: SafetensorsDType,
    /** In elements of `dtype`. */
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A tensor as torch rebuilds it: a strided view into a storage (offset and strides in elements). */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly strides: number[],
  ) {}
}

/** The stand-in a GLOBAL yields for an allowed name; only REDUCE and persistent ids look inside. */
class Allowed {
  constructor(readonly qualified: string) {}
}

/** torch.<X>Storage → element type. The zip format stores every storage little-endian. */
const STORAGES: Record<string, SafetensorsDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  // Protocol 2 pickles bytes as _codecs.encode(text, 'latin1'); implemented below as exactly that.
  '_codecs.encode',
  'torch.Size',
]);
/** Names that only ever appear as arguments (the tensor class handed to _rebuild_from_type_v2). */
const TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

/** Runs the restricted unpickler over a torch.save pickle; storages come back as StorageRefs. */
export function unpickleTorch(data: Uint8Array, file: string): unknown {
  const corrupt = (why: string): StudioError => new StudioError('BAD_INPUT', `${file}: the checkpoint's pickle is corrupt (${why})`);
  const nat = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw corrupt(`${what} is ${String(v)}`);
    return v;
  };
  const dims = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v)) throw corrupt(`${what} is a ${typeName(v)}`);
    return v.map((d, i) => nat(d, `${what}[${i}]`));
  };

  const reduce = (callable: unknown, args: unknown[]): unknown => {
    if (!(callable instanceof Allowed) || !CALLABLES.has(callable.qualified)) {
      throw corrupt(`it calls ${callable instanceof Allowed ? callable.qualified : typeName(callable)}`);
    }
    switch (callable.qualified) {
      case 'collections.OrderedDict': {
        const d = new Map<unknown, unknown>();
        for (const pair of Array.isArray(args[0]) ? args[0] : []) if (Array.isArray(pair)) d.set(pair[0], pair[1]);
        return d;
      }
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, size, stride] = args;
        if (!(storage instanceof StorageRef)) throw corrupt(`a tensor is built on a ${typeName(storage)}, not a storage`);
        const shape = dims(size, 'a tensor size');
        const strides = dims(stride, 'a tensor stride');
        if (strides.length !== shape.length) throw corrupt(`a tensor has size [${shape.join(', ')}] but stride [${strides.join(', ')}]`);
        return new TensorRef(storage, nat(offset, 'a storage offset'), shape, strides);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        // A Parameter is its data tensor plus requires_grad/hooks, which inference never needs.
        if (!(args[0] instanceof TensorRef)) throw corrupt(`a Parameter wraps a ${typeName(args[0])}`);
        return args[0];
      case 'torch._tensor._rebuild_from_type_v2': {
        // (func, type, args, state): a Tensor subclass; the data is func(*args), the rest is Python state.
        const [func, , inner] = args;
        if (!Array.isArray(inner)) throw corrupt('_rebuild_from_type_v2 without an argument tuple');
        return reduce(func, inner);
      }
      case '_codecs.encode': {
        const [text, encoding] = args;
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) throw corrupt('an unexpected _codecs.encode');
        return Uint8Array.from(Buffer.from(text, 'latin1'));
      }
      default: // torch.Size(tuple)
        return Array.isArray(args[0]) ? [...(args[0] as unknown[])] : [];
    }
  };

  return unpickle(data, file, {
    global(module, name) {
      const qualified = `${module}.${name}`;
      if (CALLABLES.has(qualified) || TYPES.has(qualified) || (module === 'torch' && name in STORAGES)) return new Allowed(qualified);
      throw refused(file, qualified);
    },
    reduce,
    build(obj, state) {
      // OrderedDict carries the state dict's `_metadata` (module versions) and tensors may carry Python
      // attributes: neither matters for the weights, so the state is dropped.
      if (obj instanceof Map || obj instanceof TensorRef) return obj;
      throw corrupt(`BUILD on a ${typeName(obj)}, state ${typeName(state)}`);
    },
    persistentLoad(pid) {
      // torch.save writes ('storage', storage_type, key, location, numel) for every storage.
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length !== 5) throw corrupt(`an unknown persistent id ${typeName(pid)}`);
      const [, type, key, location, numel] = pid;
      const dtype = type instanceof Allowed && type.qualified.startsWith('torch.') ? STORAGES[type.qualified.slice(6)] : undefined;
      if (!dtype) throw corrupt(`a storage of type ${type instanceof Allowed ? type.qualified : typeName(type)}`);
      if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) throw corrupt(`a storage key ${JSON.stringify(key)}`);
      return new StorageRef(key, dtype, nat(numel, `storage ${key}'s size`), String(location));
    },
  });
}
