// GET /metrics in the Prometheus text format, for steep-repl agent
// --metrics-port. Bound before the agent starts: a port that cannot be
// served is a bad argument (exit 2), and nothing has started yet.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { ExitCode, SteepError } from '../../lib/errors';
import { HealthMetrics } from './metrics';

export interface MetricsServer {
  // host:port as bound ([::1]:9187 for IPv6)
  readonly address: string;
  readonly url: string;
  close(): Promise<void>;
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

// Why a listen failed, in words a DBA acts on.
function listenFailure(err: NodeJS.ErrnoException, where: string): SteepError {
  const why: Record<string, [string, string]> = {
    EADDRINUSE: ['the port is in use', 'choose another --metrics-port, or stop what listens there (ss -ltnp)'],
    EACCES: ['permission denied', 'ports below 1024 need privileges: choose a port from 1024 on'],
    EADDRNOTAVAIL: ['the host is not an address of this machine', 'choose --metrics-host from the addresses of this machine, or 0.0.0.0 for all'],
    ENOTFOUND: ['the host name does not resolve', 'give --metrics-host as an address or a name this machine resolves'],
    EAI_AGAIN: ['the host name does not resolve', 'give --metrics-host as an address or a name this machine resolves'],
  };
  const [reason, hint] = why[err.code ?? ''] ?? [err.message, 'check --metrics-host and --metrics-port'];
  return new SteepError(`cannot serve metrics on ${where}: ${reason}`, ExitCode.badArguments, hint);
}

export async function serveMetrics(metrics: HealthMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }).end('only GET /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${err.message}\n`),
    );
  });
  // a scraper that connects and sends nothing does not hold a socket for long
  server.requestTimeout = 10000;
  server.headersTimeout = 10000;
  const where = hostPort(host, port);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenFailure(err as NodeJS.ErrnoException, where)));
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  server.on('error', () => undefined);
  const bound = server.address() as AddressInfo;
  const address = hostPort(bound.address, bound.port);
  let closing: Promise<void> | undefined;
  return {
    address,
    url: `http://${address}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
