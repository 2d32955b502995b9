// Routes graphile-worker's and graphile-migrate's log lines into our JSON log.
import { LogFunctionFactory } from 'graphile-worker';
import { Logger } from './log';

export function makeLogFunction(logger: Logger): LogFunctionFactory {
  return (scope) => (level, message, meta) => {
    const ours = level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'debug';
    logger.log(ours, 'graphile.log', { message, ...scope, ...(meta ?? {}) });
  };
}
