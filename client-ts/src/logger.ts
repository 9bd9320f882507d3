/** Injectable logging: the client never writes to the console unless asked to. */

export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

const noop = (): void => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export function consoleLogger(prefix = "[LivePortraitClient]"): Logger {
  const line = (message: string, meta?: Record<string, unknown>): unknown[] =>
    meta === undefined ? [prefix, message] : [prefix, message, meta];
  return {
    debug: (m, meta) => console.debug(...line(m, meta)),
    info: (m, meta) => console.info(...line(m, meta)),
    warn: (m, meta) => console.warn(...line(m, meta)),
    error: (m, meta) => console.error(...line(m, meta)),
  };
}
