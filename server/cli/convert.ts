import { parseArgs } from 'node:util';
import { StudioError } from '../../nodes/api/errors.ts';
import { isPackPrecision, PACK_PRECISIONS, type PackPrecision } from '../../nodes/supir/lib/pack-contract.ts';
import { convertToPack } from '../models/pack/convert.ts';

export const CONVERT_USAGE = `  supir-studio convert --supir SUPIR-v0Q.ckpt --sdxl sd_xl_base_1.0_0.9vae.safetensors --out DIR
                       [--precision fp32|fp16] [--vae sdxl_vae.safetensors] [--num-head-channels 64]
      Compile SUPIR + SDXL checkpoints (.ckpt or .safetensors) into an ONNX model pack. Stopped
      runs resume; the tokenizer vocabulary ships with SUPIR Studio. --precision fp16 makes the
      denoiser and text encoders half precision (the VAE stays fp32); --fp16 is the same.
      --sdxl may be any single-file SDXL fine-tune; --vae takes the VAE from its own file (for a
      base without one baked in, or to replace it).
`;

/** `--precision` and its alias `--fp16`, which must agree when both are given. */
export function precisionArg(values: { precision?: string | undefined; fp16?: boolean | undefined }): PackPrecision {
  const { precision, fp16 } = values;
  if (precision !== undefined && !isPackPrecision(precision)) {
    throw new StudioError('BAD_INPUT', `--precision must be ${PACK_PRECISIONS.join(' or ')}, got '${precision}'\n\n${CONVERT_USAGE}`);
  }
  if (fp16 && precision !== undefined && precision !== 'fp16') {
    throw new StudioError('BAD_INPUT', `--fp16 is --precision fp16; it contradicts --precision ${precision}\n\n${CONVERT_USAGE}`);
  }
  return precision ?? (fp16 ? 'fp16' : 'fp32');
}

export async function convertCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      supir: { type: 'string' },
      sdxl: { type: 'string' },
      out: { type: 'string' },
      precision: { type: 'string' },
      fp16: { type: 'boolean' },
      vae: { type: 'string' },
      'num-head-channels': { type: 'string' },
    },
  });
  if (!values.supir || !values.sdxl || !values.out) {
    throw new StudioError('BAD_INPUT', `convert needs --supir, --sdxl and --out\n\n${CONVERT_USAGE}`);
  }
  const precision = precisionArg(values);
  const heads = values['num-head-channels'] ? Number(values['num-head-channels']) : undefined;
  const manifest = await convertToPack({
    supir: values.supir,
    sdxl: values.sdxl,
    out: values.out,
    precision,
    ...(values.vae ? { vae: values.vae } : {}),
    ...(heads ? { numHeadChannels: heads } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`model pack written to ${values.out} (${Object.keys(manifest.components).length} components, ${manifest.precision})\n`);
  return 0;
}
