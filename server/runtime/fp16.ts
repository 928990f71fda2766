/**
 * IEEE 754 binary16 <-> binary32 conversion. Node 20 has no Float16Array, so onnxruntime-node takes
 * and returns fp16 tensors as raw bits in a Uint16Array. This is the one place that converts them:
 * the session worker calls it for float16 model inputs and outputs, so nodes only see Float32.
 *
 * float32 -> float16 rounds to nearest, ties to even (what numpy and PyTorch do), keeps the sign of
 * zero, produces subnormals down to 2^-24, overflows to infinity from 65520 on, and maps NaN to a
 * quiet NaN. Everything is done on the integer bits so that no double rounding can creep in.
 */

/** float32 bits -> float16 bits, rounding to nearest even. */
export function halfBitsFromFloatBits(f32: number): number {
  const sign = (f32 >>> 16) & 0x8000;
  const abs = f32 & 0x7fffffff;
  if (abs >= 0x47800000) {
    // |x| >= 65536 (or inf/NaN): infinity, or a quiet NaN.
    return abs > 0x7f800000 ? sign | 0x7e00 : sign | 0x7c00;
  }
  if (abs < 0x38800000) {
    // |x| < 2^-14: the result is a float16 subnormal (or zero). Its unit is 2^-24, so the value in
    // units is mantissa * 2^(exp - 126 - 24 + 24) = mantissa >> (126 - exp), rounded to even.
    const exp = abs >>> 23;
    const shift = 126 - exp;
    if (exp === 0 || shift > 24) return sign; // below half of the smallest subnormal: +-0
    const mant = (abs & 0x7fffff) | 0x800000;
    let q = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  // Normal range: rebias the exponent and round the 13 dropped mantissa bits to even. A carry out
  // of the mantissa correctly bumps the exponent, up to infinity for 65520 <= |x| < 65536.
  const odd = (abs >>> 13) & 1;
  return sign | ((abs - 0x38000000 + 0xfff + odd) >>> 13);
}

/** float16 bits -> float32 bits (exact: every float16 is a float32). */
export function floatBitsFromHalfBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: normalise so that the leading 1 becomes the implicit bit.
  const lead = Math.clz32(mant) - 21; // shifts that bring the top set bit to bit 10
  return (sign | ((113 - lead) << 23) | (((mant << lead) & 0x3ff) << 13)) >>> 0;
}

let halfTable: Uint32Array | undefined;

/** float32 -> float16 bits. `out` may be passed to reuse memory. */
export function toFloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new RangeError(`fp16 output has ${out.length} values, input ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsFromFloatBits(bits[i]!);
  return out;
}

/** float16 bits -> float32, through a 65536-entry table (256 KiB, built on first use). */
export function fromFloat16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new RangeError(`fp32 output has ${out.length} values, input ${src.length}`);
  if (!halfTable) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = floatBitsFromHalfBits(h);
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = halfTable[src[i]!]!;
  return out;
}
