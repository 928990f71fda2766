/**
 * SUPIR Resize: PIL2Tensor's size arithmetic (Python/numpy round half to even), the Pillow 8-bit
 * bicubic port against pixels made by Pillow 12.3 (`Image.fromarray(a).resize((w, h),
 * Image.BICUBIC)`, fixtures below), and the torch bicubic used for the final resize back.
 */
import { describe, expect, it } from 'vitest';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import SupirResize, { pillowBicubic8, roundHalfEven, supirSizes, torchBicubic } from '../../nodes/supir/resize.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

/** The fixture input: HWC uint8 pixels from a formula Python evaluated identically. */
function fixtureImage(w: number, h: number): ImageTensor {
  const data = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[c * h * w + y * w + x] = ((((x * 53 + y * 97 + c * 31 + ((x * y * 7) % 23)) * 13) % 256) / 255);
  return { n: 1, c: 3, h, w, data };
}

/** Pillow's output for each [w, h, tw, th], HWC uint8 as hex. */
const PILLOW: Array<[number, number, number, number, string]> = [
  [9, 7, 16, 20, '009c19227563a03ae19f95d369ff8e24d84922994b9b6ad5b932fb7700b840427528ba4e88a0bbd65fff9c26de7609b603991839765baa43cd9d95c15ef58421d247239a499e6dc2c13be38608a8494b6d25b74b869eaad962fca630c98417a64c9217787a45cc569399958c3cdd630ec7411f9d44ac768ede4fa1b32e7b62625315b13b7b9a7be26ab2c5478eae3677b18715ce7f27f6734692944510b93900b5391da13cbc8347ff6d47ed663e84823205a82a70933ced754bee693fe66538f37d10fc8413f9911b869125058e2e089c3533a031b88e1af78b14fb9822989c301399387a8a1ff6800afa8c16f4951ffb7300e78e09b7b8276f8948345159557534729816909614a3a623b8c64091b06556837eb07c3dff8b07d9b629bbcd41ed6900bd950b65d64957807e6e1a90ad4f3ab88b01609d2241be4766e96c85baa5a469cde96e6dff961aaad85272fa78e46314a98c2c45c9684977947d179ed0424cd97e1849a83919cf5852ed718badb4c44dede96482e59d278ed7705bf3a1db6272ae6e785d808b447185555b77b55571d1706b4dbe6134dd538cc444ae7888b226d8a25c7c8ea03187a58d84a1c7d161d4b74dc68431ab46697328a44d8b6d98bb5fc25aca8b60de4dcd9616cc47528e0cb14d5c6d34a33a826da0b249dec85cfeb83eea9712c1575b7d2caa537e66aeab49e266aba271c457cd8d12bc503f6f2395266d650ca8416d6398a637cbc054f5b43eea9c1cd37a42a8646c8a8a3db99c26d2755aa97089708da93378964748727c1f955f11af4544806f636388b84bdfb042dba233d49932c69432ba9320b98d15b58110a96d4d8c51c1613fd75a32bc6429ba5723b64a22a649229c48af42d9b444c9b946aea13fa98439ab8042a88038a58201a7752ba158af9251d66d52c9463ec34929bf511dc14518c33ea539d8be46ade25d62976856417369569785748b997a1d9f8418b2947bd0a2a188a2a91f66b8332ec95b2fdd5b32e7589c30d6c14895f576248a8d170fa23935de6867d38d743f9a9112bec154f5e3729de8841389ab2b34d16448ea7759f57f9825ceac4d8ec892218197282e965737de6756e07c7b4da19521c1a663d7d3729ff5734a94a94d3ed86c66d59383d0a9961bc38a529276ae42779465786aa04db77745cd6b8a55b0943fbc648f8f978a95e36aac91aa874adc7389aab3b38ad99513bb7156963ac25c719095b147d75e978539ba5f955abb9256b832b258699d8dd165f48dacb152df78a28ac8d456fa9410b868579624ca646f90a5c43cea648e8833b759985cbe925eb721bd455aa38bce62ff8dacc155e07aac7fd1e243ff'],
  [23, 19, 8, 6, '85815a7b8c5a97826a9c7f56a084557f96609b7f62a674588d5d957c728969a16e8083a38d6c9a819f6b839871b1825b788d89727d7b799d7fa1729577945e89977d737793787f6661a17e7d8c89915f7e9e7491997f869d8e7e7d8b65647986a08368a185908b70a88c608e7f998678998a629b69518e699369916d9381a17098685c956c8d7490748e727a7b559359'],
  [11, 13, 24, 7, '758c09828520b57459c6757e809e7639be601fba4215a82d5e914bc2747ad55f83ba50708e625f3797492eab4b9d8e71ef718adf5f7dba5c686d7e5e29a5525f9e31cc810bf97600e8665dd16d5f9a7f6f6b857a4f6c784d567288546aba616196885754b94c5acc4191ca39a5a759935fa38c46b09b7157a59a209ea75395a69078979861828c8a767bcc7167e86e60b045ebb443d9bf3eb0b5428d7f587e586b7e696d988765b4824cb57233a7774e9a888c898da37388965971964a3dae4a1dbd5130b76348a973409e6b3b9169727da1be69f0df60ff9207be892fa674906c65cb4d6a9f72677a8d40a66e24cf4c599962aa448fac449e7d7a9f8282a6bc5cb3c463ad80b38a4fe57760c5927e9aab86988e8b9c6da28395bf62dbcb53f866b19170a89089868c97728f8d869c8396a98b81b5916bb8797a7b58952f508f335176705e738673837878a27163df7956f27c61a06e744f638f566ca97680b66ca8ba54d6bc4ae944ea7449d86153ae3262902876996d879aad9263bd9137b768749738d06d54c360a37367cb4f72d05483bf588f8e5a976c6292747b74889356979b4ba69750ad7782af4dc4b03be11fbe442cb053488e76697d99928dbda5a6cb7dc5a34fda7557c5847598a495758db55357ab5050766f775f6d997939b3961ab7ae368eb95c68a078707f888b866fa89f43c4a930d0'],
];

describe('SUPIR Resize', () => {
  it('computes sizes as PIL2Tensor does (round half to even)', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 7].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 7]);
    expect(supirSizes(512, 384, 1, 1024, 64)).toEqual({ w0: 512, h0: 384, w: 1344, h: 1024 });
    expect(supirSizes(96, 160, 1, 64, 64)).toEqual({ w0: 96, h0: 160, w: 128, h: 128 });
    expect(supirSizes(5, 640, 0.5, 64, 64)).toEqual({ w0: 2, h0: 320, w: 64, h: 8192 });
    expect(supirSizes(1000, 3000, 2, 1024, 64)).toEqual({ w0: 2000, h0: 6000, w: 1984, h: 6016 });
  });

  it("matches Pillow's 8-bit bicubic bit for bit (enlarge, shrink, mixed)", () => {
    for (const [w, h, tw, th, hex] of PILLOW) {
      const out = pillowBicubic8(fixtureImage(w, h), tw, th);
      const want = Buffer.from(hex, 'hex');
      const got = new Uint8Array(want.length);
      for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) for (let c = 0; c < 3; c++) got[(y * tw + x) * 3 + c] = Math.round(out.data[c * th * tw + y * tw + x]! * 255);
      expect(Buffer.from(got).equals(want), `${w}x${h} -> ${tw}x${th}`).toBe(true);
    }
  });

  it('returns the working image and the size to resize back to', async () => {
    const { env, cleanup } = tempEnv();
    try {
      const out = await runNode(SupirResize, { image: fixtureImage(9, 7), upscale: 1, min_size: 64, multiple: 8 }, fakeContext(env));
      const image = out.image as ImageTensor;
      expect([image.w, image.h, out.width, out.height]).toEqual([80, 64, 9, 7]);
      await expect(runNode(SupirResize, { image: fixtureImage(9, 7), upscale: 16, min_size: 8192, multiple: 64 }, fakeContext(tempEnv({ maxPixels: 1e6 }).env))).rejects.toThrow(/over the limit/);
    } finally {
      cleanup();
    }
  });

  it("torch bicubic: A = -0.75 taps, half-pixel centres, clamped edges", () => {
    // 2x enlargement: t = 0.25 / 0.75, torch's weights (-0.10546875, 0.87890625, 0.26171875, -0.03515625).
    const line: ImageTensor = { n: 1, c: 1, h: 1, w: 4, data: Float32Array.of(0, 1, 0, 0) };
    const up = torchBicubic(line, 8, 1).data;
    expect(Array.from(up)).toEqual([-0.10546875, 0.26171875, 0.87890625, 0.87890625, 0.26171875, -0.10546875, -0.03515625, 0]);
    const flat: ImageTensor = { n: 1, c: 3, h: 5, w: 7, data: new Float32Array(105).fill(0.3) };
    for (const v of torchBicubic(flat, 3, 11).data) expect(v).toBeCloseTo(0.3, 6);
  });
});
