import fs from 'node:fs';
import type { ConnectionOptions } from 'bullmq';
import type { RedisOptions } from 'ioredis';

/** What `--queue redis://[user:password@]host:port[/db]` (or `rediss://` for TLS) names. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL without its password, for logs and GET /api/system. */
  display: string;
}

/**
 * Parses a Redis URL. The password may also come from SUPIR_REDIS_PASSWORD (so that it is not in
 * `ps` output); `rediss://` turns TLS on (server certificate checked against the system's CAs,
 * or the PEM file SUPIR_REDIS_CA names).
 */
export function parseRedisUrl(raw: string, env: NodeJS.ProcessEnv = process.env): RedisTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RangeError(`--queue must be a URL like redis://127.0.0.1:6379, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new RangeError(`--queue must start with redis:// or rediss:// (TLS), got ${JSON.stringify(raw)}`);
  const port = url.port ? Number(url.port) : 6379;
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText ? Number(dbText) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RangeError(`the database in ${JSON.stringify(raw)} must be a number, got ${JSON.stringify(dbText)}`);
  const password = url.password ? decodeURIComponent(url.password) : env.SUPIR_REDIS_PASSWORD || undefined;
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const tls = url.protocol === 'rediss:';
  const auth = username ? `${username}:***@` : password ? ':***@' : '';
  return {
    host,
    port,
    db,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    tls,
    display: `${url.protocol}//${auth}${url.host}${db ? `/${db}` : ''}`,
  };
}

/** ioredis options for a target; `blocking` connections (workers, event readers) must never give up a command. */
export function redisOptions(target: RedisTarget, env: NodeJS.ProcessEnv = process.env): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: env.SUPIR_REDIS_CA ? { ca: fs.readFileSync(env.SUPIR_REDIS_CA) } : {} } : {}),
    // BullMQ's blocking commands need this; a server-side producer overrides it to fail fast.
    maxRetriesPerRequest: null,
    // Reconnect forever, at most every 2 s: Redis going away is an outage, not the end.
    retryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 6)),
  };
}

/** The same options as BullMQ's connection type (its own declaration of ioredis' options differs in detail). */
export function bullConnection(options: RedisOptions): ConnectionOptions {
  return options as ConnectionOptions;
}
