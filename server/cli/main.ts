import { parseArgs } from 'node:util';
import { StudioError } from '../../nodes/api/errors.ts';
import { currentLogLevel } from '../log.ts';
import { CONVERT_USAGE, convertCommand } from './convert.ts';
import { runWorkflowFile } from './run.ts';

const USAGE = `supir-studio — node-graph image restoration

  supir-studio serve [--host 127.0.0.1] [--port 8188] [--data DIR] [--auth auto|token|none]
                     [--on-restart fail|requeue]
      Start the editor and API (same as npm start). Bound to anything but loopback, it asks
      for an access token (kept in DATA/state/access-token; open the printed address once).
      --on-restart: what happens to the prompt that was running when the server stopped.

  supir-studio run WORKFLOW.json [--set NODE.WIDGET=VALUE ...] [--input FILE] [--out DIR]
                   [--data DIR] [--max-pixels N] [--json]
      Run a workflow headless. NODE is a node id or title. --input sets the file of the
      workflow's Load Image node. --json prints one JSON object:
      {"status", "executed", "cached", "outputs": {id: [paths]}, "timings_ms": {id: ms}}.

${CONVERT_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') return runCommand(rest);
  if (command === 'convert') return convertCommand(rest);
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
    },
  });
  if (positionals.length !== 1) throw new StudioError('BAD_INPUT', `run takes one workflow file, got ${positionals.length}\n\n${USAGE}`);
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const log = values.json ? () => undefined : (line: string) => line && process.stderr.write(`${line}\n`);
  const summary = await runWorkflowFile(
    {
      file: positionals[0]!,
      sets: values.set ?? [],
      json: values.json ?? false,
      ...(values.input ? { input: values.input } : {}),
      ...(values.out ? { out: values.out } : {}),
      ...(values.data ? { data: values.data } : {}),
      ...(values['max-pixels'] ? { maxPixels: Number(values['max-pixels']) } : {}),
    },
    log,
    abort.signal,
  );
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
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
  });
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
