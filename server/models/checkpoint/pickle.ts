/**
 * A restricted pickle machine. Python's unpickler imports and calls whatever the stream names, which
 * is how a malicious .ckpt runs code; this one never calls anything. It knows only the data opcodes a
 * checkpoint uses, and hands every name (GLOBAL, STACK_GLOBAL), call (REDUCE), BUILD and persistent
 * id to the caller's hooks, which implement the few allowed ones themselves and refuse the rest.
 * Opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, EXT*) or use the text protocol are refused.
 *
 * Values: str → string, int → number (bigint beyond 2^53), float → number, bytes → Uint8Array,
 * list and tuple → array, dict → Map, set → Set, None → null.
 */
import { StudioError } from '../../../nodes/api/errors.ts';

export interface PickleHooks {
  /** GLOBAL / STACK_GLOBAL: a stand-in for module.name, or a throw that refuses the file. */
  global(module: string, name: string): unknown;
  /** REDUCE: `callable` is whatever `global` returned. */
  reduce(callable: unknown, args: unknown[]): unknown;
  /** BUILD: returns the object that replaces `obj` on the stack. */
  build(obj: unknown, state: unknown): unknown;
  /** BINPERSID: PyTorch's reference to a storage held outside the pickle. */
  persistentLoad(pid: unknown): unknown;
}

/** The opcodes a checkpoint never needs, by byte, for the refusal message. */
const REFUSED: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x50: 'PERSID', 0x46: 'FLOAT', 0x49: 'INT', 0x4c: 'LONG', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET',
  0x70: 'PUT', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export function unpickle(data: Uint8Array, file: string, hooks: PickleHooks): unknown {
  try {
    return run(data, file, hooks);
  } catch (err) {
    // A hostile stream can still trip the engine (say a self-containing tuple used as a dict key):
    // whatever it is, report it as a bad file, not as a crash.
    if (err instanceof StudioError) throw err;
    throw new StudioError('BAD_INPUT', `${file}: the checkpoint's pickle is corrupt (${(err as Error).message})`);
  }
}

function run(data: Uint8Array, file: string, hooks: PickleHooks): unknown {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const corrupt = (why: string): StudioError => new StudioError('BAD_INPUT', `${file}: the checkpoint's pickle is corrupt (${why})`);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const take = (n: number): number => {
    if (n < 0 || pos + n > buf.length) throw corrupt(`it ends inside an opcode at byte ${pos}`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): unknown => {
    if (stack.length === 0 || stack.length <= (marks.at(-1) ?? -1)) throw corrupt(`stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw corrupt(`stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const at = marks.pop();
    if (at === undefined) throw corrupt(`no MARK before byte ${pos}`);
    return stack.splice(at);
  };
  const str = (n: number): string => buf.toString('utf8', take(n), pos);
  const bytes = (n: number): Uint8Array => Uint8Array.from(buf.subarray(take(n), pos));
  const len64 = (): number => {
    const n = buf.readBigUInt64LE(take(8));
    if (n > BigInt(buf.length)) throw corrupt(`a length of ${n} bytes at byte ${pos - 8}`);
    return Number(n);
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw corrupt(`an unterminated name at byte ${pos}`);
    return str(end - pos + 1).slice(0, -1);
  };
  const setItems = (dict: unknown, items: unknown[]): void => {
    if (!(dict instanceof Map) || items.length % 2) throw corrupt(`SETITEMS on a ${typeName(dict)} at byte ${pos}`);
    for (let i = 0; i < items.length; i += 2) dict.set(hashable(items[i]), items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list)) throw corrupt(`APPENDS on a ${typeName(list)} at byte ${pos}`);
    for (const item of items) list.push(item); // not push(...items): a huge batch would overflow the call stack
  };
  const get = (i: number): unknown => {
    if (!memo.has(i)) throw corrupt(`memo ${i} used before it is set, at byte ${pos}`);
    return memo.get(i);
  };

  while (pos < buf.length) {
    const op = buf[take(1)]!;
    switch (op) {
      case 0x80: take(1); break; // PROTO
      case 0x95: take(8); break; // FRAME: only a read-ahead hint
      case 0x2e: return pop(); // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(buf.readInt32LE(take(4))); break; // BININT
      case 0x4b: stack.push(buf[take(1)]); break; // BININT1
      case 0x4d: stack.push(buf.readUInt16LE(take(2))); break; // BININT2
      case 0x8a: stack.push(long(buf.subarray(take(buf[take(1)]!), pos))); break; // LONG1
      case 0x8b: stack.push(long(buf.subarray(take(buf.readUInt32LE(take(4))), pos))); break; // LONG4
      case 0x47: stack.push(buf.readDoubleBE(take(8))); break; // BINFLOAT
      case 0x58: stack.push(str(buf.readUInt32LE(take(4)))); break; // BINUNICODE
      case 0x8c: stack.push(str(buf[take(1)]!)); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(len64())); break; // BINUNICODE8
      // Python 2 str: bytes that were text, read as latin-1 the way torch.load(encoding='latin1') does.
      case 0x55: stack.push(buf.toString('latin1', take(buf[take(1)]!), pos)); break; // SHORT_BINSTRING
      case 0x54: stack.push(buf.toString('latin1', take(buf.readUInt32LE(take(4))), pos)); break; // BINSTRING
      case 0x43: stack.push(bytes(buf[take(1)]!)); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(buf.readUInt32LE(take(4)))); break; // BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(len64())); break; // BINBYTES8, BYTEARRAY8
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x6c: case 0x74: stack.push(popMark()); break; // LIST, TUPLE
      case 0x91: stack.push(new Set(popMark().map(hashable))); break; // FROZENSET
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) throw corrupt(`ADDITEMS on a ${typeName(set)}`);
        for (const item of items) set.add(hashable(item));
        break;
      }
      case 0x71: memo.set(buf[take(1)]!, top()); break; // BINPUT
      case 0x72: memo.set(buf.readUInt32LE(take(4)), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(get(buf[take(1)]!)); break; // BINGET
      case 0x6a: stack.push(get(buf.readUInt32LE(take(4)))); break; // LONG_BINGET
      case 0x63: { const module = line(); stack.push(hooks.global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw corrupt(`STACK_GLOBAL on a ${typeName(module)} and a ${typeName(name)}`);
        stack.push(hooks.global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (!Array.isArray(args)) throw corrupt(`REDUCE with ${typeName(args)} arguments at byte ${pos}`);
        stack.push(hooks.reduce(callable, args));
        break;
      }
      case 0x62: { const state = pop(); stack.push(hooks.build(pop(), state)); break; } // BUILD
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x69: { // INST names its class inline: refuse it by that name, like a GLOBAL
        const module = line();
        const name = line();
        throw refused(file, `${module}.${name} (through the INST opcode)`);
      }
      default: {
        const name = REFUSED[op];
        if (name) throw refused(file, `the ${name} opcode`, 'uses');
        throw corrupt(`unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
      }
    }
  }
  throw corrupt('it ends without a STOP opcode (truncated?)');
}

/** The one refusal message, for a disallowed name or opcode. */
export function refused(file: string, what: string, verb = 'asks for'): StudioError {
  return new StudioError('BAD_INPUT', `${file}: refused to load: the pickle ${verb} ${what}, which a checkpoint never needs`);
}

export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'tuple/list';
  if (v instanceof Map) return 'dict';
  if (typeof v === 'object') return v.constructor.name;
  return typeof v;
}

/** Dict keys must compare by value: tuples of numbers/strings become a string key, the rest stay. */
function hashable(k: unknown): unknown {
  return Array.isArray(k) ? JSON.stringify(k, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : k;
}

/** A little-endian two's complement integer (LONG1/LONG4), as a number when it fits exactly. */
function long(b: Buffer): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
