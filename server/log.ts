/**
 * A tiny named logger in the style of `debug`: `createLogger('http').info(...)`. Everything goes to
 * stderr so that stdout stays free for the CLI's machine-readable output. The level comes from
 * SUPIR_LOG (debug | info | warn | error | silent); under vitest the default is silent so that test
 * output shows only test results.
 */
const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LEVELS)[number];

export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

let override: LogLevel | undefined;

/** Sets the level for every logger (the CLI's --verbose / --quiet); undefined returns to SUPIR_LOG. */
export function setLogLevel(level: LogLevel | undefined): void {
  override = level;
}

export function currentLogLevel(): LogLevel {
  if (override) return override;
  const fromEnv = process.env.SUPIR_LOG?.trim().toLowerCase();
  if (fromEnv && (LEVELS as readonly string[]).includes(fromEnv)) return fromEnv as LogLevel;
  return process.env.VITEST ? 'silent' : 'info';
}

export function createLogger(name: string): Logger {
  // The level is read on every call (cheap) so that tests and the CLI can change it at run time.
  const at =
    (level: Exclude<LogLevel, 'silent'>) =>
    (message: string, ...details: unknown[]): void => {
      if (LEVELS.indexOf(level) < LEVELS.indexOf(currentLogLevel())) return;
      const extra = details.map(formatDetail).join(' ');
      process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${name}] ${message}${extra ? ` ${extra}` : ''}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function formatDetail(value: unknown): string {
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
