// lib/notifications listen(): a listener that outlives its server's
// restarts, says when it lost and regained the link, and closes at any time.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { nodeClientConfig } from '../lib/connection';
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { channels, listen, Listener } from '../lib/notifications';
import { packageRoot } from '../lib/paths';
import { OwnClusters, query, startOwnClusters } from './support/clusters';
import { waitUntil } from './support/wait';

// Every 50 ms: the conditions here are variables a callback sets.
const waitFor = (what: string, probe: () => boolean, timeoutMs = 20000) => waitUntil(what, probe, timeoutMs, 50);

describe('listen()', () => {
  let own: OwnClusters<'pg'>;
  let cluster: Cluster;
  const listeners: Listener[] = [];

  beforeAll(async () => {
    own = await startOwnClusters('test-listen', ['pg']);
    cluster = own.clusters.pg;
  });

  afterAll(async () => {
    await Promise.all(listeners.map((l) => l.close()));
    await own?.remove();
  });

  const config = (applicationName: string) =>
    nodeClientConfig({ host: cluster.host, port: cluster.port, dbname: 'postgres', user: cluster.user }, applicationName);

  it('delivers parsed payloads, reports the lost link, re-listens after a restart and calls onConnected again', async () => {
    const received: unknown[] = [];
    let connects = 0;
    let disconnects = 0;
    const listener = listen(config('listen test 1'), [channels.state, channels.progress], {
      onNotification: (channel, payload) => received.push({ channel, payload }),
      onConnected: () => connects++,
      onDisconnected: () => disconnects++,
    });
    listeners.push(listener);
    await waitFor('first connect', () => connects === 1);
    expect(listener.connected).toBe(true);

    await query(cluster.url(), `SELECT pg_notify('steep_repl_state', '{"node_id": "Nöde \\"1\\"", "to": "copying"}')`);
    await query(cluster.url(), `SELECT pg_notify('steep_repl_events', '{"event": "not.listened"}')`);
    await waitFor('the state notification', () => received.length === 1);
    expect(received).toEqual([{ channel: 'steep_repl_state', payload: { node_id: 'Nöde "1"', to: 'copying' } }]);

    await stopCluster(cluster.dataDir);
    await waitFor('the lost link reported', () => disconnects > 0);
    expect(listener.connected).toBe(false);
    // Longer than pg-listen's default 3 s retry timeout: this listener keeps trying.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await startCluster(cluster);
    await waitFor('the reconnect', () => connects === 2);
    expect(listener.connected).toBe(true);

    await query(cluster.url(), `SELECT pg_notify('steep_repl_progress', '{"node_id": "n", "overall_percent": 42.5}')`);
    await waitFor('a notification after the reconnect', () => received.length === 2);
    expect(received[1]).toEqual({ channel: 'steep_repl_progress', payload: { node_id: 'n', overall_percent: 42.5 } });
    await listener.close();
  }, 60000);

  it('keeps trying when the server is down at the start, and close() stops it at once', async () => {
    await stopCluster(cluster.dataDir);
    let connects = 0;
    let disconnects = 0;
    const listener = listen(config('listen test 2'), [channels.events], {
      onNotification: () => undefined,
      onConnected: () => connects++,
      onDisconnected: () => disconnects++,
    });
    listeners.push(listener);
    await waitFor('two failed attempts', () => disconnects >= 2);
    await startCluster(cluster);
    await waitFor('the late first connect', () => connects === 1);

    await stopCluster(cluster.dataDir);
    await waitFor('the lost link', () => !listener.connected);
    const closing = Date.now();
    await listener.close();
    expect(Date.now() - closing).toBeLessThan(3000);
    const before = { connects, disconnects };
    await startCluster(cluster);
    // A closed listener neither reconnects nor reports anything.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect({ connects, disconnects }).toEqual(before);
    const sessions = await query(cluster.url(), "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'listen test 2'");
    expect(sessions).toEqual([{ n: 0 }]);
  }, 60000);

  it('lets its process exit by itself once closed while reconnecting to a server that stays down', async () => {
    // A child process with nothing else to do: it ends only if close() left no retry loop running.
    const script = `
      const { listen } = require(${JSON.stringify(path.join(packageRoot, 'dist', 'lib', 'notifications.js'))});
      const listener = listen(${JSON.stringify(config('listen test 3'))}, ['steep_repl_state'], {
        onNotification() {},
        onConnected() { console.log('connected'); },
        onDisconnected() { setTimeout(() => listener.close().then(() => console.log('closed')), 1500); },
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the child connected', () => output.includes('connected'));
      await stopCluster(cluster.dataDir);
      await waitFor('the child closed its listener', () => output.includes('closed'));
      const closedAt = Date.now();
      // Waits past the bound so the check below, not this wait, is what fails.
      await waitFor('the child exiting by itself', () => child.exitCode !== null, 20000);
      expect(await exited).toBe(0);
      expect(Date.now() - closedAt).toBeLessThan(10000);
    } finally {
      child.kill('SIGKILL');
      await startCluster(cluster);
    }
  }, 60000);
});
