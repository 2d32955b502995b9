// A TCP forwarder to a real server that can go silent the way a network
// that drops every packet does: in blackhole mode the connections it
// carries stay open but nothing passes either way, not even a FIN (a
// client's end() waits for a close that never comes, as it would for
// tcp_retries2), and new connections are accepted and never answered.
// It stands in for the network, not for PostgreSQL: what passes in forward
// mode is the real server's.
import * as net from 'node:net';

export interface TcpProxy {
  port: number;
  // connections accepted so far, in either mode
  connections(): number;
  blackhole(): void;
  // Forwards again: connections the blackhole froze are cut, new ones pass.
  forward(): void;
  close(): Promise<void>;
}

interface Carried {
  client: net.Socket;
  upstream?: net.Socket;
  frozen: boolean;
}

export function tcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let silent = false;
  let accepted = 0;
  const carried = new Set<Carried>();
  const cut = (c: Carried) => {
    carried.delete(c);
    c.client.destroy();
    c.upstream?.destroy();
  };
  // half-open allowed: a FIN from a frozen client is swallowed instead of answered
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    const c: Carried = { client, frozen: silent };
    carried.add(c);
    client.on('error', () => undefined);
    if (!c.frozen) {
      const upstream = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
      c.upstream = upstream;
      upstream.on('error', () => undefined);
      upstream.on('data', (d) => c.frozen || client.write(d));
      upstream.on('end', () => c.frozen || client.end());
      upstream.on('close', () => c.frozen || cut(c));
      client.on('data', (d) => c.frozen || upstream.write(d));
      client.on('end', () => c.frozen || upstream.end());
    }
    // a frozen connection's data is read and dropped; its end is ignored
    client.on('close', () => c.frozen || cut(c));
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        connections: () => accepted,
        blackhole: () => {
          silent = true;
          for (const c of carried) c.frozen = true;
        },
        forward: () => {
          silent = false;
          for (const c of [...carried]) if (c.frozen) cut(c);
        },
        close: () =>
          new Promise((done) => {
            for (const c of [...carried]) cut(c);
            server.close(() => done());
          }),
      });
    });
  });
}
