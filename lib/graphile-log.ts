// Routes graphile-worker's and graphile-migrate's log lines into our JSON log.
import { LogFunctionFactory } from 'graphile-worker';
import { Logger } from './log';

export function makeLogFunction(logger: Logger): LogFunctionFactory {
  return (scope) => (level, message, meta) => {
    const ours = level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'debug';
    // The pg client in meta carries connection parameters and statements;
    // errors are cut to message and code by the JSON log itself.
    const { client: _client, ...fields } = meta ?? {};
    logger.log(ours, 'graphile.log', { message, ...scope, ...fields });
  };
}
