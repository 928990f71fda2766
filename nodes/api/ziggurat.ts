/**
 * Tables of the ziggurat method for standard normals (Marsaglia & Tsang 2000, 128 layers), used by
 * Rng.fillNormalZiggurat. A draw is one 32-bit word: the layer from bits 0..6 and a 25-bit signed
 * magnitude from bits 7..31, so that the two are independent. Computed once with Math.exp/log/sqrt,
 * whose results V8 gives the same on every machine (its own fdlibm port).
 */
export const ZIG_LAYERS = 128;
/** Scale of the 25-bit magnitude: |j| < 2^24. */
const M = 2 ** 24;
/** Where the base layer's tail starts. */
export const ZIG_R = 3.442619855899;
/** KN[i]: |j| below it is inside layer i's rectangle (accepted with no further test). */
export const ZIG_KN = new Int32Array(ZIG_LAYERS);
/** WN[i]: j * WN[i] is the normal value of magnitude j in layer i. */
export const ZIG_WN = new Float64Array(ZIG_LAYERS);
/** FN[i]: the density exp(-x^2 / 2) at layer i's edge. */
export const ZIG_FN = new Float64Array(ZIG_LAYERS);

(() => {
  const vn = 9.91256303526217e-3;
  let dn = ZIG_R;
  let tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  ZIG_KN[0] = Math.floor((dn / q) * M);
  ZIG_KN[1] = 0;
  ZIG_WN[0] = q / M;
  ZIG_WN[ZIG_LAYERS - 1] = dn / M;
  ZIG_FN[0] = 1;
  ZIG_FN[ZIG_LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = ZIG_LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    ZIG_KN[i + 1] = Math.floor((dn / tn) * M);
    tn = dn;
    ZIG_FN[i] = Math.exp(-0.5 * dn * dn);
    ZIG_WN[i] = dn / M;
  }
})();
