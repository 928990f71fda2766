/** The @upscalerjs fixture image (128x128 RGBA PNG) as NCHW float32 RGB in 0..1, cropped. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';

export interface Crop {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

export function fixturePath(pkg = '@upscalerjs/esrgan-slim'): string {
  const require = createRequire(import.meta.url);
  // The packages export no package.json; walk up from the CJS entry to the package root.
  let dir = path.dirname(require.resolve(pkg));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package root above ${require.resolve(pkg)}`);
    dir = up;
  }
  return path.join(dir, 'assets', 'fixture.png');
}

export async function loadFixtureCrop(crop: Crop, pkg?: string): Promise<Float32Array> {
  const { data, info } = await sharp(fixturePath(pkg))
    .extract(crop)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = data[i * info.channels + c]! / 255;
  return out;
}
