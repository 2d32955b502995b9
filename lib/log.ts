// One JSON object per line on stdout: the agent's structured log.
import { redactSecrets } from './connection';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(base: Record<string, unknown> = {}, out: NodeJS.WritableStream = process.stdout): Logger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  // An unknown STEEP_REPL_LOG_LEVEL means info, not everything.
  const wanted = order.indexOf((process.env.STEEP_REPL_LOG_LEVEL ?? '').toLowerCase() as LogLevel);
  const minimum = wanted >= 0 ? wanted : order.indexOf('info');
  return {
    log(level, event, fields = {}) {
      if (order.indexOf(level) < minimum) return;
      const line = safeStringify({ ts: new Date().toISOString(), level, event, ...base, ...fields });
      out.write(`${redactSecrets(line)}\n`);
    },
  };
}

// A log line must never throw: cycles and bigints become text.
function safeStringify(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Error) return { message: v.message, code: (v as { code?: string }).code };
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    return v;
  });
}
