import { parseArgs } from 'node:util';
import { StudioError } from '../../nodes/api/errors.ts';
import { currentLogLevel } from '../log.ts';
import { CONVERT_USAGE, convertCommand } from './convert.ts';
import { runWorkflowFile } from './run.ts';
import { WORKER_USAGE, workerCommand } from './worker.ts';
import { registryWith } from './extra-nodes.ts';
import { batchBar, batchTable } from './batch.ts';

const USAGE = `supir-studio — node-graph image restoration

  supir-studio serve [--host 127.0.0.1] [--port 8188] [--data DIR] [--auth auto|token|none]
                     [--on-restart fail|requeue] [--queue redis://HOST:PORT]
      Start the editor and API (same as npm start). Bound to anything but loopback, it asks
      for an access token (kept in DATA/state/access-token; open the printed address once).
      --on-restart: what happens to the prompt that was running when the server stopped.
      --queue redis://HOST:PORT: prompts go to a BullMQ queue in Redis, run by workers (below).
      --nodes MODULE: also offer the node definitions MODULE exports (give workers the same).

  supir-studio run WORKFLOW.json [--set NODE.WIDGET=VALUE ...] [--input FILE] [--out DIR]
                   [--data DIR] [--max-pixels N] [--json]
      Run a workflow headless (ours, or ComfyUI's: UI or API JSON, or a PNG it wrote; imported
      first, the import report on stderr). NODE is a node id or title. --input sets the file of the
      workflow's Load Image node. --json prints one JSON object:
      {"status", "executed", "cached", "outputs": {id: [paths]}, "timings_ms": {id: ms}}.

  supir-studio run WORKFLOW.json --input-dir DIR [--out DIR] [--pattern GLOB] [--sort name|modified|size[-desc]]
                   [--start N] [--limit N] [...]
      Run a workflow once per image of DIR (a batch: its Load Images (folder) node, or its one
      Load Image node, reads DIR). Outputs are named after their sources ({name}), so running
      the same command again skips the images done. Prints a progress bar, then a table.

${WORKER_USAGE}

${CONVERT_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') return runCommand(rest);
  if (command === 'convert') return convertCommand(rest);
  if (command === 'worker') return workerCommand(rest);
  if (command === 'serve' || command === undefined) return serveCommand(rest);
  process.stdout.write(USAGE);
  return command === 'help' || command === '--help' || command === '-h' ? 0 : 2;
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: 'string', multiple: true, default: [] },
      input: { type: 'string' },
      out: { type: 'string' },
      data: { type: 'string' },
      'max-pixels': { type: 'string' },
      json: { type: 'boolean', default: false },
      'input-dir': { type: 'string' },
      pattern: { type: 'string' },
      sort: { type: 'string' },
      start: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new StudioError('BAD_INPUT', `run takes one workflow file, got ${positionals.length}\n\n${USAGE}`);
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const bar = values.json ? undefined : batchBar((text) => process.stderr.write(text), process.stderr.isTTY === true);
  const log = values.json ? () => undefined : (line: string) => {
    if (!line) return;
    bar?.end();
    process.stderr.write(`${line}\n`);
  };
  const started = performance.now();
  const summary = await runWorkflowFile(
    {
      file: positionals[0]!,
      sets: values.set ?? [],
      json: values.json ?? false,
      ...(values.input ? { input: values.input } : {}),
      ...(values.out ? { out: values.out } : {}),
      ...(values.data ? { data: values.data } : {}),
      ...(values['max-pixels'] ? { maxPixels: Number(values['max-pixels']) } : {}),
      ...(values['input-dir'] !== undefined
        ? {
            batch: {
              dir: values['input-dir'],
              ...(values.pattern !== undefined ? { pattern: values.pattern } : {}),
              ...(values.sort !== undefined ? { sort: values.sort } : {}),
              ...(values.start !== undefined ? { start: count(values.start, '--start') } : {}),
              ...(values.limit !== undefined ? { limit: count(values.limit, '--limit') } : {}),
            },
          }
        : {}),
    },
    log,
    abort.signal,
    (e) => e.type === 'batch' && bar?.update(e),
  );
  bar?.end();
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else if (summary.batch) process.stdout.write(`${batchTable(summary.batch, performance.now() - started)}\n`);
  else for (const paths of Object.values(summary.outputs)) for (const p of paths) process.stdout.write(`${p}\n`);
  return summary.status === 'success' ? 0 : 1;
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      data: { type: 'string' },
      auth: { type: 'string' },
      'on-restart': { type: 'string' },
      queue: { type: 'string' },
      nodes: { type: 'string', multiple: true, default: [] },
    },
  });
  const auth = choice(values.auth, '--auth', ['auto', 'token', 'none'] as const);
  const onRestart = choice(values['on-restart'], '--on-restart', ['fail', 'requeue'] as const);
  const { startServer } = await import('../app.ts');
  const server = await startServer({
    ...(values.host ? { host: values.host } : {}),
    ...(values.port ? { port: Number(values.port) } : {}),
    ...(values.data ? { dataRoot: values.data } : {}),
    ...(auth ? { auth } : {}),
    ...(onRestart ? { onRestart } : {}),
    ...(values.queue ? { queue: values.queue } : {}),
  }, await registryWith(values.nodes ?? []));
  process.stdout.write(`SUPIR Studio is running at ${server.url} (listening on ${server.address})\n`);
  // The log has shown the warnings already, unless SUPIR_LOG keeps it quieter than that.
  if (currentLogLevel() === 'error' || currentLogLevel() === 'silent') for (const warning of server.warnings) process.stderr.write(`WARNING: ${warning}\n`);
  if (server.token !== undefined) {
    process.stdout.write(`Access token required. Open ${server.openUrl}\n(or send "Authorization: Bearer ${server.token}")\n`);
  }
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<number>(() => undefined);
}

function count(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new StudioError('BAD_INPUT', `${flag} must be a whole number of 0 or more, got ${JSON.stringify(value)}`);
  return n;
}

function choice<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw new StudioError('BAD_INPUT', `${flag} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`supir-studio: ${message}\n`);
    process.exitCode = err instanceof StudioError ? 2 : 1;
  },
);
