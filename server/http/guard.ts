import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { isLoopbackHost } from '../config.ts';
import { createLogger } from '../log.ts';
import { sendError } from './errors.ts';

const log = createLogger('guard');

export interface GuardOptions {
  /** The address the server is bound to. */
  host: string;
  /** The port, read per request because it is only known after listen (port 0). */
  port: () => number;
}

/**
 * Why a request must be refused, or null. A web page on another site can make the browser send
 * requests here (CSRF) and, with DNS rebinding, even read the answers; so
 * - a present Origin must be this server's own origin (`Origin: null` from sandboxes and files is
 *   refused too), and
 * - when bound to loopback, the Host header must name loopback and our port, which a rebound
 *   domain name (evil.example resolving to 127.0.0.1) cannot.
 * Requests without Origin (curl, the CLI, same-origin GETs) pass the first check.
 */
export function refusalReason(headers: IncomingHttpHeaders, opts: GuardOptions): string | null {
  const port = opts.port();
  const loopback = isLoopbackHost(opts.host);
  const hostHeader = (headers.host ?? '').toLowerCase();
  const localHosts = loopbackHosts(port);
  if (loopback && !localHosts.includes(hostHeader)) return `Host ${JSON.stringify(headers.host ?? '')} is not this server`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  const allowed = localHosts.map((h) => `http://${h}`);
  // Bound to a LAN address, the page is served under whatever name the user typed.
  if (!loopback && hostHeader) allowed.push(`http://${hostHeader}`);
  if (!allowed.includes(origin.toLowerCase())) return `Origin ${JSON.stringify(origin)} may not use this server`;
  return null;
}

function loopbackHosts(port: number): string[] {
  const hosts = ['127.0.0.1', 'localhost', '[::1]'];
  const withPort = hosts.map((h) => `${h}:${port}`);
  return port === 80 ? [...withPort, ...hosts] : withPort;
}

export function originGuard(opts: GuardOptions): RequestHandler {
  return (req, res, next) => {
    const reason = refusalReason(req.headers, opts);
    if (reason === null) {
      next();
      return;
    }
    log.warn(`refused ${req.method} ${req.path}: ${reason}`);
    sendError(res, 403, 'FORBIDDEN', reason);
  };
}
