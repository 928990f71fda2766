/**
 * A server in a process of its own, for the tests that must kill it (SIGKILL: no shutdown code
 * runs, as in a crash or power cut) and for `npm run load`, whose latency figures must not share an
 * event loop with the load generator. Args: DATA_ROOT [fail|requeue] [maxPending] [port] (a
 * restarted server takes the port it had, as `npm start` does). Prints one JSON line
 * `{"url": ...}` on stdout once listening. Registers the test node packs beside the catalogue.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { catalogue } from '../../nodes/index.ts';
import { startServer } from '../../server/app.ts';
import { NodeRegistry } from '../../server/engine/index.ts';
import { testNodes } from '../support/test-nodes.ts';
import { faultNodes } from './fault-nodes.ts';

const [dataRoot, onRestart = 'fail', maxPending = '1000', port = '0'] = process.argv.slice(2);
if (!dataRoot) throw new Error('usage: child-server.ts DATA_ROOT [fail|requeue] [maxPending] [port]');
const server = await startServer(
  { port: Number(port), dataRoot, onRestart: onRestart === 'requeue' ? 'requeue' : 'fail', maxPending: Number(maxPending) },
  new NodeRegistry([...catalogue, ...testNodes, ...faultNodes]),
);
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
// For the load script: SIGUSR1 starts measuring the event loop's delay, SIGUSR2 prints it (ms).
const loop = monitorEventLoopDelay({ resolution: 5 });
process.on('SIGUSR1', () => {
  loop.reset();
  loop.enable();
});
process.on('SIGUSR2', () => {
  loop.disable();
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  process.stdout.write(`${JSON.stringify({ eventLoopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) } })}\n`);
});
const stop = (): void => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
