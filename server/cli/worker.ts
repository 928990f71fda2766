import os from 'node:os';
import { parseArgs } from 'node:util';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ProviderChoice } from '../../nodes/api/runtime.ts';
import { providerFromEnv } from '../config.ts';
import { parseRedisUrl } from '../scale/redis-url.ts';
import { startWorker } from '../scale/worker.ts';
import { registryWith } from './extra-nodes.ts';

export const WORKER_USAGE = `  supir-studio worker --queue redis://HOST:PORT [--provider auto|cuda|webgpu|cpu] [--device N]
                      [--data DIR] [--server URL] [--name NAME] [--lock-ms 30000]
      Run prompts of a server started with --queue, one at a time (start one worker per GPU).
      Inputs and models are read from --data (the server's data folder, shared or copied);
      outputs are sent to the server over HTTP (--server, default: the address the server
      gave; its access token from SUPIR_TOKEN). A worker killed mid-prompt loses its prompt to
      another worker after --lock-ms. SIGTERM/SIGINT finish the running prompt, then stop.`;

export async function workerCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      queue: { type: 'string' },
      provider: { type: 'string' },
      device: { type: 'string' },
      data: { type: 'string' },
      server: { type: 'string' },
      name: { type: 'string' },
      'lock-ms': { type: 'string' },
      nodes: { type: 'string', multiple: true, default: [] },
    },
  });
  const queue = values.queue ?? process.env.SUPIR_QUEUE;
  if (!queue) throw new StudioError('BAD_INPUT', `worker needs --queue redis://HOST:PORT\n\n${WORKER_USAGE}\n`);
  const providers = ['auto', 'cuda', 'webgpu', 'cpu'];
  if (values.provider !== undefined && !providers.includes(values.provider)) throw new StudioError('BAD_INPUT', `--provider must be one of ${providers.join(', ')}`);
  const device = values.device === undefined ? undefined : whole(values.device, '--device');
  const lockMs = values['lock-ms'] === undefined ? undefined : whole(values['lock-ms'], '--lock-ms');
  const worker = await startWorker({
    target: parseRedisUrl(queue),
    registry: await registryWith(values.nodes ?? []),
    dataRoot: values.data ?? process.env.SUPIR_STUDIO_DATA ?? './data',
    provider: (values.provider as ProviderChoice | undefined) ?? providerFromEnv(),
    ...(device !== undefined ? { device } : {}),
    ...(values.server ? { serverUrl: values.server } : {}),
    ...(process.env.SUPIR_TOKEN?.trim() ? { token: process.env.SUPIR_TOKEN.trim() } : {}),
    ...(values.name ? { name: values.name } : {}),
    ...(lockMs !== undefined ? { lockMs } : {}),
  });
  process.stdout.write(`${JSON.stringify({ worker: worker.id, pid: process.pid, host: os.hostname() })}\n`);
  const stop = (): void => void worker.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<number>(() => undefined);
}

function whole(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new StudioError('BAD_INPUT', `${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return n;
}
