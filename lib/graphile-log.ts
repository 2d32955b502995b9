// Routes graphile-worker's and graphile-migrate's log lines into our JSON log.
import { LogFunctionFactory } from 'graphile-worker';
import { Logger } from './log';

// Errors become their message and code: pg errors carry the whole client
// (connection parameters, statements) otherwise.
function plain(meta: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'client') continue;
    out[key] = value instanceof Error ? { message: value.message, code: (value as { code?: string }).code } : value;
  }
  return out;
}

export function makeLogFunction(logger: Logger): LogFunctionFactory {
  return (scope) => (level, message, meta) => {
    const ours = level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'debug';
    logger.log(ours, 'graphile.log', { message, ...scope, ...plain(meta ?? {}) });
  };
}
