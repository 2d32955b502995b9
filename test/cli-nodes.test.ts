// install and node register|list|status|remove as a DBA runs them: real CLI
// processes against a real server; every refusal proves nothing changed.
import { Client, escapeIdentifier } from 'pg';
import { stringWidth } from 'terminal-kit';
import { freePort } from '../lib/embedded-cluster';
import { quoteIdent } from '../lib/identifiers';
import { clusterA, createDatabase, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { CliResult, runCli } from './support/processes';
import { registryState, RegistryState } from './support/registry-state';

const cluster = clusterA();

// Environment of a CLI run that reaches nothing unless the test says so.
const noConnectionEnv = {
  STEEP_REPL_DB: undefined,
  PGHOST: undefined,
  PGPORT: undefined,
  PGDATABASE: undefined,
  PGUSER: undefined,
  PGPASSWORD: undefined,
};

// CLI processes mostly wait on their own start-up; three at a time halve the wall time.
async function inParallel<T>(items: T[], fn: (item: T) => Promise<void>, limit = 3): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

async function catalog(url: string): Promise<unknown> {
  const [row] = await query(
    url,
    `SELECT (SELECT json_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text ORDER BY n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('steep_repl', 'graphile_worker', 'graphile_migrate')) AS relations,
            -- by name: install re-creates functions, so their oids (the order of ORDER BY 1, a constant) change
            (SELECT json_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('steep_repl', 'graphile_worker')) AS functions,
            (SELECT json_agg(m ORDER BY m.hash) FROM graphile_migrate.migrations m) AS migrations,
            (SELECT json_agg(m ORDER BY m.id) FROM graphile_worker.migrations m) AS worker_migrations`,
  );
  return row;
}

describe('steep-repl install and node commands', () => {
  let db: { name: string; url: string };
  const oddDbName = 'Größe Test DB "Select" ノード';
  const oddDbUrl = cluster.url(oddDbName);

  beforeAll(async () => {
    db = await createDatabase(cluster, 'cli_nodes');
    await query(cluster.url(), `CREATE DATABASE ${escapeIdentifier(oddDbName)}`);
  });
  afterAll(async () => {
    await dropDatabase(cluster, db.name);
    await query(cluster.url(), `DROP DATABASE IF EXISTS ${escapeIdentifier(oddDbName)} WITH (FORCE)`);
  });

  it('install is idempotent: twice exit 0 and the same catalog', async () => {
    const first = await runCli(['install', '--db', db.url]);
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`steep_repl installed in 127.0.0.1:${cluster.port}/${db.name}`);
    const before = await catalog(db.url);
    const second = await runCli(['install', '--db', db.url]);
    expect(second.code).toBe(0);
    expect(await catalog(db.url)).toEqual(before);
    expect(JSON.stringify(before)).toContain('steep_repl.nodes:r');
  });

  it('registers, lists, shows and removes nodes in text and JSON', async () => {
    const empty = await runCli(['node', 'list', '--db', db.url]);
    expect(empty.code).toBe(0);
    expect(empty.stdout.trim()).toBe('no nodes registered (steep-repl node register <id> ...)');
    expect(JSON.parse((await runCli(['node', 'list', '--json', '--db', db.url])).stdout)).toEqual([]);
    const noLocal = await runCli(['node', 'status', '--db', db.url]);
    expect(noLocal.code).toBe(2);
    expect(noLocal.stderr).toMatch(/no local node is registered in this database; name a node id/);

    const local = await runCli([
      'node', 'register', 'node_a', '--host', '127.0.0.1', '--port', String(cluster.port), '--dbname', db.name,
      '--local', '--priority', '80', '--json', '--db', db.url,
    ]);
    expect(local.code).toBe(0);
    expect(JSON.parse(local.stdout)).toMatchObject({
      node_id: 'node_a',
      node_name: 'node_a',
      host: '127.0.0.1',
      port: cluster.port,
      dbname: db.name,
      user_name: null,
      priority: 80,
      status: 'unknown',
      last_seen: null,
      init_state: 'uninitialized',
      is_local: true,
    });

    const peer = await runCli([
      'node', 'register', 'node_b', '--host', 'db2.example', '--dbname', 'app', '--user', 'replicator',
      '--name', 'Second node', '--db', db.url,
    ]);
    expect(peer.code).toBe(0);
    expect(peer.stdout.trim()).toBe('registered node node_b (db2.example:5432/app)');

    const listed = await runCli(['node', 'list', '--json', '--db', db.url]);
    expect(listed.code).toBe(0);
    const nodes = JSON.parse(listed.stdout);
    expect(nodes.map((n: { node_id: string }) => n.node_id)).toEqual(['node_a', 'node_b']);
    expect(nodes[1]).toMatchObject({
      node_id: 'node_b',
      node_name: 'Second node',
      host: 'db2.example',
      port: 5432,
      dbname: 'app',
      user_name: 'replicator',
      priority: 50,
      is_local: false,
      init_state: 'uninitialized',
      init_in_progress: false,
      status: 'unknown',
      // its health from its own database, which does not answer at that address
      health: 'unreachable',
      health_reason: expect.stringMatching(/^cannot connect to node node_b at db2\.example:5432\/app: \S/),
      health_from: 'own database',
    });
    expect(nodes[0]).toMatchObject({ node_id: 'node_a', health_from: 'own database' });

    const text = await runCli(['node', 'list', '--db', db.url]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+STATE\s+INIT\s+LAG\s+HEALTH\s+LAST SEEN\s+PRIO$/);
    // The local node's health comes from its agent's heartbeat; none ran yet.
    expect(lines[2]).toMatch(new RegExp(`^node_a \\*\\s+127\\.0\\.0\\.1:${cluster.port}/${db.name}\\s+uninitialized\\s+-\\s+-\\s+offline\\s+never\\s+80$`));
    expect(lines[3]).toMatch(/^node_b\s+db2\.example:5432\/app\s+uninitialized\s+-\s+-\s+unreachable\s+never/);
    // under the table, why
    expect(lines.slice(4)).toEqual([
      `node_a: offline — no agent has run for this node: start steep-repl agent --db <url of node_a>`,
      expect.stringMatching(/^node_b: unreachable — cannot connect to node node_b at db2\.example:5432\/app: \S/),
    ]);

    // A heartbeat older than 15 s means the agent stopped without saying so.
    await query(db.url, "UPDATE steep_repl.nodes SET status = 'healthy', last_seen = now() - interval '1 minute' WHERE node_id = 'node_a'");
    const stale = await runCli(['node', 'list', '--json', '--db', db.url]);
    expect(JSON.parse(stale.stdout).find((n: { node_id: string }) => n.node_id === 'node_a')).toMatchObject({
      status: 'healthy',
      health: 'offline',
      health_reason: expect.stringMatching(/^agent silent for 1 min \(last heartbeat \d\d:\d\d:\d\d\): is steep-repl agent running\?$/),
    });
    const staleStatus = await runCli(['node', 'status', '--db', db.url]);
    expect(staleStatus.stdout).toMatch(/^health\s+offline — agent silent for 1 min \(last heartbeat [\d:]+\): is steep-repl agent running\? \(last seen 1m ago\)$/m);
    // a fresh heartbeat and a round of the agent's replication watch
    await query(db.url, "UPDATE steep_repl.nodes SET last_seen = now() WHERE node_id = 'node_a'");
    await query(db.url, 'SELECT count(*) FROM steep_repl.observe_replication()');
    const fresh = await runCli(['node', 'list', '--json', '--db', db.url]);
    expect(JSON.parse(fresh.stdout).find((n: { node_id: string }) => n.node_id === 'node_a')).toMatchObject({ health: 'healthy' });

    const localStatus = await runCli(['node', 'status', '--db', db.url]);
    expect(localStatus.code).toBe(0);
    expect(localStatus.stdout).toMatch(/^node\s+node_a \(local\)$/m);
    expect(localStatus.stdout).toMatch(/^init state\s+uninitialized$/m);
    const peerStatus = await runCli(['node', 'status', 'node_b', '--json', '--db', db.url]);
    expect(peerStatus.code).toBe(0);
    expect(JSON.parse(peerStatus.stdout)).toMatchObject({ node_id: 'node_b', user_name: 'replicator', is_local: false, health: 'unreachable', health_from: 'own database' });
    const peerText = await runCli(['node', 'status', 'node_b', '--db', db.url]);
    expect(peerText.stdout).toMatch(/^health\s+unreachable — cannot connect to node node_b at db2\.example:5432\/app: .* \(last seen never\)$/m);
    expect(peerText.stdout).toMatch(/^replication\s+watched in the database of node_b: steep-repl node status --db <url of node_b>$/m);

    const removed = await runCli(['node', 'remove', 'node_b', '--json', '--db', db.url]);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ node_id: 'node_b', host: 'db2.example' });
    expect(await query(db.url, 'SELECT node_id FROM steep_repl.nodes ORDER BY 1')).toEqual([{ node_id: 'node_a' }]);
    const events = await query(db.url, "SELECT event, node_id FROM steep_repl.audit_log WHERE event LIKE 'node.%' ORDER BY audit_id");
    expect(events).toEqual([
      { event: 'node.registered', node_id: 'node_a' },
      { event: 'node.registered', node_id: 'node_b' },
      { event: 'node.removed', node_id: 'node_b' },
    ]);
  });

  it("shows each peer's health as its own database has it, unreachable when it does not answer, the registry's only when it cannot tell", async () => {
    // a peer with its own database and its own registry (no agent there yet)
    const peerId = 'Peer "B" ü';
    const peerSql = '"Peer ""B"" ü"';
    const peerDb = await createNodeDatabase(cluster, 'cli_nodes_peer');
    const refusedPort = await freePort();
    try {
      const address = (dbname: string) => ['--host', '127.0.0.1', '--port', String(cluster.port), '--dbname', dbname, '--user', cluster.user];
      for (const [registry, args] of [
        [peerDb.url, [peerId, ...address(peerDb.name), '--local']],
        [db.url, [peerId, ...address(peerDb.name)]],
        // a database without steep_repl, and a port nothing listens on
        [db.url, ['no_steep', ...address('postgres')]],
        [db.url, ['gone', '--host', '127.0.0.1', '--port', String(refusedPort), '--dbname', 'app']],
      ] as Array<[string, string[]]>) {
        const reg = await runCli(['node', 'register', ...args, '--db', registry]);
        expect({ args, code: reg.code, stderr: reg.stderr }).toEqual({ args, code: 0, stderr: '' });
      }
      // the registry here: its last probe found every peer healthy
      await query(db.url, "UPDATE steep_repl.nodes SET status = 'healthy', last_seen = now() WHERE NOT is_local");
      await query(db.url, "UPDATE steep_repl.nodes SET last_seen = now() WHERE is_local");
      await query(db.url, 'SELECT count(*) FROM steep_repl.observe_replication()');

      const byId = async () => {
        const listed = await runCli(['node', 'list', '--json', '--db', db.url]);
        expect(listed.code).toBe(0);
        return Object.fromEntries(JSON.parse(listed.stdout).map((n: { node_id: string }) => [n.node_id, n]));
      };
      let nodes = await byId();
      // its own database: no agent ever ran for it, whatever the probe here says
      expect(nodes[peerId]).toMatchObject({
        status: 'healthy',
        health: 'offline',
        health_reason: `no agent has run for this node: start steep-repl agent --db <url of ${peerSql}>`,
        health_from: 'own database',
        last_seen: null,
        replication: [],
      });
      expect(nodes.no_steep).toMatchObject({
        health: 'healthy',
        health_reason: `its own database at 127.0.0.1:${cluster.port}/postgres could not tell (steep_repl is not installed there); shown as this database's registry has it`,
        health_from: 'registry',
      });
      expect(nodes.gone).toMatchObject({
        health: 'unreachable',
        health_reason: expect.stringMatching(new RegExp(`^cannot connect to node gone at 127\\.0\\.0\\.1:${refusedPort}/app: .*ECONNREFUSED`)),
        health_from: 'own database',
      });
      expect(nodes.node_a).toMatchObject({ health: 'healthy', health_from: 'own database' });

      const text = await runCli(['node', 'list', '--db', db.url]);
      expect(text.code).toBe(0);
      const row = (id: string) => text.stdout.split('\n').find((l) => l.startsWith(`${id} `));
      expect(row(peerId)).toMatch(/\suninitialized\s+-\s+-\s+offline\s+never\s+50$/);
      expect(row('gone')).toMatch(/\sunreachable\s/);
      // under the table: the three peers' reasons, the registry's word said so (node_a is healthy)
      const reasons = text.stdout.split('\n').filter((l) => / — /.test(l));
      expect(reasons.sort()).toEqual(
        [
          `${peerSql}: offline — ${nodes[peerId].health_reason}`,
          `gone: unreachable — ${nodes.gone.health_reason}`,
          `no_steep: healthy — ${nodes.no_steep.health_reason}`,
        ].sort(),
      );

      // its agent heartbeats and watches there: healthy, seen just now, its watch's lines in node status
      await query(peerDb.url, 'SELECT steep_repl.heartbeat()');
      await query(peerDb.url, 'SELECT count(*) FROM steep_repl.observe_replication()');
      nodes = await byId();
      expect(nodes[peerId]).toMatchObject({ health: 'healthy', health_reason: null, health_from: 'own database', replication: [] });
      expect(nodes[peerId].last_seen).not.toBeNull();
      expect(nodes[peerId].replication_observed_at).not.toBeNull();
      const status = await runCli(['node', 'status', peerId, '--db', db.url]);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^health\s+healthy \(last seen \ds ago\)$/m);
      expect(status.stdout).toMatch(/^replication\s+no steep-repl subscription or slot, observed \ds ago$/m);
      const statusJson = JSON.parse((await runCli(['node', 'status', peerId, '--json', '--db', db.url])).stdout);
      expect(statusJson).toMatchObject({ node_id: peerId, is_local: false, health: 'healthy', health_from: 'own database' });
      const registryOnly = await runCli(['node', 'status', 'no_steep', '--db', db.url]);
      expect(registryOnly.stdout).toMatch(/^replication\s+watched in the database of no_steep: steep-repl node status --db <url of no_steep>$/m);
    } finally {
      await query(db.url, 'SELECT steep_repl.remove_node(node_id) FROM steep_repl.nodes WHERE NOT is_local');
      await dropDatabase(cluster, peerDb.name);
    }
  });

  it('keeps odd node ids exactly: spaces, quotes, capitals, unicode, reserved words', async () => {
    const ids = ['select', 'Node With Spaces', `it's "quoted"`, 'ÜNÏCØDÉ ノード', 'a;DROP TABLE steep_repl.nodes;--', 'user'];
    await inParallel(ids, async (id) => {
      // one address per node: a second id for the same database is refused
      const reg = await runCli(['node', 'register', id, '--host', '127.0.0.1', '--port', String(5433 + ids.indexOf(id)), '--dbname', 'app', '--db', db.url]);
      expect({ id, code: reg.code, stderr: reg.stderr }).toEqual({ id, code: 0, stderr: '' });
    });
    const listed = JSON.parse((await runCli(['node', 'list', '--json', '--db', db.url])).stdout);
    expect(listed.map((n: { node_id: string }) => n.node_id).sort()).toEqual([...ids, 'node_a'].sort());
    // In text the address column starts at the same terminal cell on every row, wide characters or not.
    const [header, , ...lines] = (await runCli(['node', 'list', '--db', db.url])).stdout.trimEnd().split('\n');
    const addressAt = stringWidth(header.slice(0, header.indexOf('ADDRESS')));
    // the table, then a line per peer that does not answer at its address, its id as quote_ident writes it
    const rows = lines.slice(0, ids.length + 1);
    const reasons = lines.slice(ids.length + 1);
    expect(reasons).toHaveLength(ids.length);
    for (const id of ids) {
      const said = `${quoteIdent(id)}: unreachable — cannot connect to node ${quoteIdent(id)} at 127.0.0.1:`;
      expect({ id, lines: reasons.filter((l) => l.startsWith(said)).length }).toEqual({ id, lines: 1 });
    }
    for (const row of rows) expect({ row, at: stringWidth(row.slice(0, row.indexOf('127.0.0.1'))) }).toEqual({ row, at: addressAt });
    await inParallel(ids.slice(0, 3), async (id) => {
      const status = await runCli(['node', 'status', id, '--json', '--db', db.url]);
      expect(JSON.parse(status.stdout).node_id).toBe(id);
    });
    await inParallel(ids, async (id) => {
      const removed = await runCli(['node', 'remove', id, '--db', db.url]);
      expect(removed.code).toBe(0);
      expect(removed.stdout.trim()).toBe(`removed node ${id}`);
    });
    expect(await query(db.url, 'SELECT node_id FROM steep_repl.nodes')).toEqual([{ node_id: 'node_a' }]);
  });

  it('installs into and registers in a database with an odd name through a percent-encoded URL', async () => {
    expect(oddDbUrl).toContain('Gr%C3%B6%C3%9Fe%20Test%20DB%20%22Select%22');
    const install = await runCli(['install', '--db', oddDbUrl]);
    expect(install.stderr).not.toMatch(/error/i);
    expect(install.code).toBe(0);
    const reg = await runCli([
      'node', 'register', 'Größe', '--host', '127.0.0.1', '--port', String(cluster.port), '--dbname', oddDbName, '--local',
      '--db', oddDbUrl,
    ]);
    expect(reg.code).toBe(0);
    const status = await runCli(['node', 'status', '--json', '--db', oddDbUrl]);
    expect(JSON.parse(status.stdout)).toMatchObject({ node_id: 'Größe', dbname: oddDbName, is_local: true });
    // Read back with a config object, not a URL: the row is in that very database.
    const client = new Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: oddDbName });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT node_id, dbname FROM steep_repl.nodes');
      expect(rows).toEqual([{ node_id: 'Größe', dbname: oddDbName }]);
    } finally {
      await client.end();
    }
  });

  describe('bad input: the right exit code, a clear message, nothing changed', () => {
    const register = (id: string, ...flags: string[]) => ['node', 'register', id, ...flags];
    const cases: Array<[string, () => string[], number, RegExp]> = [
      ['status of an unknown node', () => ['node', 'status', 'nope'], 2, /unknown node 'nope'.*\nhint: registered nodes: .*node_a/s],
      ['remove of an unknown node', () => ['node', 'remove', 'Nope Nope'], 2, /unknown node 'Nope Nope'/],
      ['a duplicate register', () => register('node_a', '--host', 'h', '--dbname', 'd'), 1, /node node_a is already registered/],
      ['port 0', () => register('n1', '--host', 'h', '--dbname', 'd', '--port', '0'), 2, /port 0 of node n1 is outside 1-65535/],
      ['port 70000', () => register('n1', '--host', 'h', '--dbname', 'd', '--port', '70000'), 2, /port 70000 .* outside 1-65535/],
      ['port abc', () => register('n1', '--host', 'h', '--dbname', 'd', '--port', 'abc'), 2, /Expected an integer but received: abc/],
      ['an empty host', () => register('n1', '--host', '', '--dbname', 'd'), 2, /host of node n1 must not be empty/],
      ['a blank host', () => register('n1', '--host', '   ', '--dbname', 'd'), 2, /host of node n1 must not be empty/],
      ['priority 0', () => register('n1', '--host', 'h', '--dbname', 'd', '--priority', '0'), 2, /priority 0 .* outside 1-100/],
      ['priority 101', () => register('n1', '--host', 'h', '--dbname', 'd', '--priority', '101'), 2, /priority 101 .* outside 1-100/],
      ['a missing --host', () => register('n1', '--dbname', 'd'), 2, /Missing required flag host/],
      ['a missing --dbname', () => register('n1', '--host', 'h'), 2, /Missing required flag dbname/],
      ['a missing node id', () => ['node', 'register', '--host', 'h', '--dbname', 'd'], 2, /Missing 1 required arg/],
      ['an empty node id', () => register('', '--host', 'h', '--dbname', 'd'), 2, /node id must not be empty/],
      ['a 64-character node id', () => register('x'.repeat(64), '--host', 'h', '--dbname', 'd'), 2, /at most 63 characters/],
      ['a second --local', () => register('other_local', '--host', 'h', '--dbname', 'd', '--local'), 1, /already registered as node node_a/],
      ['an unknown flag', () => ['node', 'list', '--colour'], 2, /Nonexistent flag: --colour/],
    ];

    // The refusals run side by side; the registry and the audit trail must
    // read the same after all of them as before.
    const results = new Map<string, CliResult>();
    let before: RegistryState;
    beforeAll(async () => {
      before = await registryState(db.url);
      await inParallel(cases, async ([what, args]) => {
        results.set(what, await runCli([...args(), '--db', db.url]));
      });
    });

    it.each(cases)('refuses %s', (what, _args, exitCode, message) => {
      const result = results.get(what)!;
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: exitCode, stdout: '' });
      expect(result.stderr).toMatch(message);
    });

    it('changed nothing while refusing', async () => {
      expect(await registryState(db.url)).toEqual(before);
    });

    it('refuses to remove a node whose initialization is in progress', async () => {
      await runCli(['node', 'register', 'busy', '--host', '127.0.0.1', '--dbname', 'busy_app', '--db', db.url]);
      await query(db.url, "SELECT steep_repl.transition('busy', 'preparing', '{\"reason\": \"test\"}')");
      const before = await registryState(db.url);
      const result = await runCli(['node', 'remove', 'busy', '--db', db.url]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/node busy is preparing; cancel its initialization before removing it/);
      expect(await registryState(db.url)).toEqual(before);
    });
  });

  describe('unreachable databases: exit 6 naming host and port', () => {
    it('a closed port', async () => {
      const port = await freePort();
      for (const args of [['node', 'list'], ['install'], ['node', 'register', 'x', '--host', 'h', '--dbname', 'd']]) {
        const result = await runCli([...args, '--db', `postgres://postgres@127.0.0.1:${port}/app`]);
        expect({ args, code: result.code }).toEqual({ args, code: 6 });
        expect(result.stderr).toContain(`127.0.0.1:${port}/app`);
        expect(result.stderr).toMatch(/ECONNREFUSED/);
      }
    });

    it('a database that does not exist', async () => {
      const result = await runCli(['node', 'status', '--db', cluster.url('no_such_db')]);
      expect(result.code).toBe(6);
      expect(result.stderr).toContain(`127.0.0.1:${cluster.port}/no_such_db`);
      expect(result.stderr).toMatch(/database "no_such_db" does not exist/);
    });

    it('a role without rights on steep_repl: exit 1 with what to do', async () => {
      const role = `steep_nopriv_${process.pid}`;
      await query(cluster.url(), `CREATE ROLE ${role} LOGIN`);
      try {
        const before = await registryState(db.url);
        const url = `postgres://${role}@127.0.0.1:${cluster.port}/${db.name}`;
        for (const args of [['node', 'list'], ['node', 'register', 'x', '--host', 'h', '--dbname', 'd']]) {
          const result = await runCli([...args, '--db', url]);
          expect({ args, code: result.code }).toEqual({ args, code: 1 });
          expect(result.stderr).toMatch(/permission denied for (schema|table|function) /);
          expect(result.stderr).toMatch(/hint: connect as a role with rights on the steep_repl schema/);
        }
        expect(await registryState(db.url)).toEqual(before);
      } finally {
        await query(cluster.url(), `DROP ROLE ${role}`);
      }
    });

    it('a database without steep_repl: exit 1 naming the install command', async () => {
      const plain = await createDatabase(cluster, 'cli_plain');
      try {
        const result = await runCli(['node', 'list', '--db', plain.url]);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/steep_repl is not installed/);
        expect(result.stderr).toMatch(/steep-repl install/);
      } finally {
        await dropDatabase(cluster, plain.name);
      }
    });
  });

  describe('connection settings: --db, then STEEP_REPL_DB, then PG*', () => {
    let closed: string;
    const pgEnv = (port: number) => ({
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGDATABASE: db.name,
      PGUSER: 'postgres',
    });
    const localNodeOf = async (result: { code: number; stdout: string; stderr: string }) => {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout).node_id;
    };
    beforeAll(async () => {
      closed = `postgres://postgres@127.0.0.1:${await freePort()}/${db.name}`;
    });

    it('STEEP_REPL_DB alone', async () => {
      const result = await runCli(['node', 'status', '--json'], { ...noConnectionEnv, STEEP_REPL_DB: db.url });
      expect(await localNodeOf(result)).toBe('node_a');
    });

    it('PG* variables alone', async () => {
      const result = await runCli(['node', 'status', '--json'], { ...noConnectionEnv, ...pgEnv(cluster.port) });
      expect(await localNodeOf(result)).toBe('node_a');
    });

    it('STEEP_REPL_DB wins over PG*', async () => {
      const wrongPort = await freePort();
      const result = await runCli(['node', 'status', '--json'], { ...noConnectionEnv, ...pgEnv(wrongPort), STEEP_REPL_DB: db.url });
      expect(await localNodeOf(result)).toBe('node_a');
      const refused = await runCli(['node', 'status'], { ...noConnectionEnv, ...pgEnv(cluster.port), STEEP_REPL_DB: closed });
      expect(refused.code).toBe(6);
      expect(refused.stderr).toContain(closed.replace('postgres://postgres@', ''));
    });

    it('--db wins over STEEP_REPL_DB and PG*', async () => {
      const wrongPort = await freePort();
      const env = { ...noConnectionEnv, ...pgEnv(wrongPort), STEEP_REPL_DB: closed };
      expect(await localNodeOf(await runCli(['node', 'status', '--json', '--db', db.url], env))).toBe('node_a');
      expect(await localNodeOf(await runCli(['node', 'status', '--json', '--db', oddDbUrl], env))).toBe('Größe');
    });

    it('install through PG* variables alone', async () => {
      const result = await runCli(['install'], { ...noConnectionEnv, ...pgEnv(cluster.port) });
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
      expect(result.stdout).toContain(`127.0.0.1:${cluster.port}/${db.name}`);
    });
  });
});
