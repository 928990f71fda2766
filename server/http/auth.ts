import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { RequestHandler } from 'express';
import { createLogger } from '../log.ts';
import { sendError } from './errors.ts';
import { TOKEN_PAGE_CSP, tokenPage, wantsTokenPage } from './token-page.ts';

const log = createLogger('auth');

/** Where the generated token lives, inside the data folder (readable by its owner only). */
export function tokenFile(dataRoot: string): string {
  return path.join(dataRoot, 'state', 'access-token');
}

/**
 * The token of this data folder: read from `state/access-token`, or generated there (192 random
 * bits, mode 0600) on first start so that it stays the same across restarts and bookmarks work.
 */
export function loadOrCreateToken(dataRoot: string): string {
  const file = tokenFile(dataRoot);
  try {
    const existing = fs.readFileSync(file, 'utf8').trim();
    if (/^[\x21-\x7e]{16,256}$/.test(existing)) return existing;
    log.warn(`${file} does not hold a usable token; writing a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(24).toString('base64url');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return token;
}

export interface AuthOptions {
  /** The token every request must carry; undefined when none is required. */
  token: string | undefined;
  /** The port, read per request (known only after listen); it names the cookie. */
  port: () => number;
}

/** One cookie per port: cookies ignore ports, and two servers on one machine must not clash. */
export function cookieName(port: number): string {
  return `supir_token_${port}`;
}

/**
 * Whether a request carries the token: `Authorization: Bearer <token>`, the cookie set by a
 * `?token=` visit, or (for the websocket upgrade, where browsers cannot set headers but scripts
 * may not keep cookies) a `token` query parameter. Compared in constant time.
 */
export function hasToken(req: IncomingMessage, opts: AuthOptions, allowQuery = false): boolean {
  const token = opts.token;
  if (token === undefined) return true;
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (match && same(match[1]!, token)) return true;
  }
  const cookie = readCookie(req.headers.cookie, cookieName(opts.port()));
  if (cookie !== undefined && same(cookie, token)) return true;
  if (allowQuery) {
    const query = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    if (query !== null && same(query, token)) return true;
  }
  return false;
}

/**
 * Refuses requests without the token (401: JSON for the API, a page with a token field for a
 * browser opening a page). A GET with the right `?token=` sets the cookie and
 * redirects to the same address without it, so the link printed in the console opens the editor
 * and the token does not stay in the address bar or the browser history.
 */
export function authGuard(opts: AuthOptions): RequestHandler {
  return (req, res, next) => {
    if (opts.token === undefined) return next();
    const url = new URL(req.originalUrl, 'http://x');
    const offered = url.searchParams.get('token');
    if (offered !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!same(offered, opts.token)) {
        log.warn(`refused ${req.method} ${req.path}: wrong token`);
        if (wantsTokenPage(req)) return sendTokenPage(res, req.path, true);
        return sendError(res, 401, 'UNAUTHORIZED', 'the token in the address is not this server\'s token');
      }
      url.searchParams.delete('token');
      res.cookie(cookieName(opts.port()), opts.token, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 365 * 24 * 3600 * 1000 });
      res.set('Cache-Control', 'no-store');
      return res.redirect(303, url.pathname + url.search);
    }
    if (hasToken(req, opts)) return next();
    log.warn(`refused ${req.method} ${req.path}: no valid token`);
    // A person opening the editor gets a page saying what to do, with a field for the token.
    if (wantsTokenPage(req)) return sendTokenPage(res, req.path, false);
    sendError(
      res,
      401,
      'UNAUTHORIZED',
      'this server needs its access token: open the address with ?token=... printed at start-up, or send "Authorization: Bearer <token>"',
    );
  };
}

function sendTokenPage(res: Parameters<RequestHandler>[1], pagePath: string, wrong: boolean): void {
  res.status(401).set({ 'Content-Security-Policy': TOKEN_PAGE_CSP, 'Cache-Control': 'no-store' }).type('html').send(tokenPage(pagePath, wrong));
}

function same(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual does not leak the token's length either.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
