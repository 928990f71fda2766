import { parseArgs } from 'node:util';
import { StudioError } from '../../nodes/api/errors.ts';
import { convertToPack } from '../models/pack/convert.ts';

export const CONVERT_USAGE = `  supir-studio convert --supir SUPIR-v0Q.ckpt --sdxl sd_xl_base_1.0_0.9vae.safetensors --out DIR
                       [--fp16] [--num-head-channels 64]
      Compile SUPIR + SDXL checkpoints (.ckpt or .safetensors) into an ONNX model pack. Stopped
      runs resume; the tokenizer vocabulary ships with SUPIR Studio.
`;

export async function convertCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      supir: { type: 'string' },
      sdxl: { type: 'string' },
      out: { type: 'string' },
      fp16: { type: 'boolean', default: false },
      'num-head-channels': { type: 'string' },
    },
  });
  if (!values.supir || !values.sdxl || !values.out) {
    throw new StudioError('BAD_INPUT', `convert needs --supir, --sdxl and --out\n\n${CONVERT_USAGE}`);
  }
  const heads = values['num-head-channels'] ? Number(values['num-head-channels']) : undefined;
  const manifest = await convertToPack({
    supir: values.supir,
    sdxl: values.sdxl,
    out: values.out,
    fp16: values.fp16 ?? false,
    ...(heads ? { numHeadChannels: heads } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`model pack written to ${values.out} (${Object.keys(manifest.components).length} components)\n`);
  return 0;
}
