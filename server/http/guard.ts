import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import type { RequestHandler } from 'express';
import { isLoopbackHost, tokenRequired, type AuthMode } from '../config.ts';
import { createLogger } from '../log.ts';
import { sendError } from './errors.ts';

const log = createLogger('guard');

export interface GuardOptions {
  /** The address the server is bound to. */
  host: string;
  /** The port, read per request because it is only known after listen (port 0). */
  port: () => number;
  /** The server's `auth` setting (default `auto`): whether the token, or the Host check, stops DNS rebinding. */
  auth?: AuthMode;
  /** Further names the Host header may give when the Host check applies (SUPIR_ALLOWED_HOSTS). */
  allowedHosts?: readonly string[];
  /** This machine's addresses; by default read from its network interfaces (tests pass their own). */
  machineAddresses?: () => readonly string[];
}

/**
 * Why a request must be refused, or null. A web page on another site can make the browser send
 * requests here (CSRF) and, with DNS rebinding, even read the answers; so
 * - a present Origin must be this server's own origin (`Origin: null` from sandboxes and files is
 *   refused too), and
 * - the Host header must name this server, which a rebound domain name (evil.example resolving
 *   to this machine) cannot: on loopback, a loopback name and our port; bound to another address
 *   without a token (`auth: none`), also the bound address, this machine's interface addresses
 *   and host name, and SUPIR_ALLOWED_HOSTS, with our port. Only where the token is required is
 *   the Host left unchecked (any LAN name may be right there, and a rebound name has no cookie).
 * Requests without Origin (curl, the CLI, same-origin GETs) pass the first check.
 */
export function refusalReason(headers: IncomingHttpHeaders, opts: GuardOptions): string | null {
  const port = opts.port();
  const loopback = isLoopbackHost(opts.host);
  const hostHeader = (headers.host ?? '').toLowerCase();
  const localHosts = loopbackHosts(port);
  if (loopback) {
    if (!localHosts.includes(hostHeader)) return `Host ${JSON.stringify(headers.host ?? '')} is not this server`;
  } else if (!tokenRequired({ auth: opts.auth ?? 'auto', host: opts.host })) {
    if (!acceptedHosts(opts, port).has(hostHeader)) {
      return `Host ${JSON.stringify(headers.host ?? '')} is not this server (without a token, only this machine's names and addresses with port ${port} are accepted)`;
    }
  }
  const origin = headers.origin;
  if (origin === undefined) return null;
  const allowed = localHosts.map((h) => `http://${h}`);
  // Bound to a LAN address, the page is served under whatever name the user typed.
  if (!loopback && hostHeader) allowed.push(`http://${hostHeader}`);
  if (!allowed.includes(origin.toLowerCase())) return `Origin ${JSON.stringify(origin)} may not use this server`;
  return null;
}

function withPort(hosts: readonly string[], port: number): string[] {
  const out = hosts.map((h) => `${h}:${port}`);
  return port === 80 ? [...out, ...hosts] : out;
}

function loopbackHosts(port: number): string[] {
  return withPort(['127.0.0.1', 'localhost', '[::1]'], port);
}

/** An address as a Host header spells it: IPv6 in brackets, lower case. */
function hostForm(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  return bare.includes(':') ? `[${bare}]` : bare;
}

/**
 * The Host headers a server bound to a non-loopback address without a token accepts: loopback,
 * the bound address (unless a wildcard), this machine's addresses and host name, the allowed
 * extra names, each with the port.
 */
function acceptedHosts(opts: GuardOptions, port: number): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  const bound = hostForm(opts.host);
  if (bound !== '0.0.0.0' && bound !== '[::]') names.push(bound);
  names.push(...(opts.machineAddresses ?? machineAddresses)().map(hostForm));
  const hostname = os.hostname().toLowerCase();
  if (hostname) names.push(hostname, `${hostname}.local`);
  names.push(...(opts.allowedHosts ?? []).map((h) => h.trim().toLowerCase()).filter(Boolean));
  return new Set(withPort(names, port));
}

let cachedAddresses: { at: number; list: string[] } | undefined;

/** The addresses of this machine's interfaces (IPv6 link-local ones, which need a zone, left out), re-read every 10 s. */
export function machineAddresses(): string[] {
  const now = Date.now();
  if (cachedAddresses && now - cachedAddresses.at < 10_000) return cachedAddresses.list;
  const list = Object.values(os.networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((e) => !(e.family === 'IPv6' && e.scopeid !== undefined && e.scopeid !== 0))
    .map((e) => e.address);
  cachedAddresses = { at: now, list };
  return list;
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
