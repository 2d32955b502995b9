// Bad input gets a clear error and changes nothing (issue 9 items 11-13):
// out-of-range ports and option values exit 2 / SR004 with the range, a
// second id for one database is refused naming the first, and a resume
// keeps the schema-sync choice the failed init recorded.
import { clusterA, clusterB, createNodeDatabase, dropDatabase, query, withClient } from './support/clusters';
import { contentHashes, createInitPair, InitPair, leftovers } from './support/init-pair';
import { freePort } from '../lib/embedded-cluster';
import { registerNode } from '../lib/sql/registerNode';
import { registryState } from './support/registry-state';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

const local = 'Input "Checks" ü';
const peer = 'peer select';

describe('input checks', () => {
  let db: { name: string; url: string };
  let peerPort: number;

  beforeAll(async () => {
    db = await createNodeDatabase(clusterA(), 'input_checks');
    // the peer's address is a port nobody listens on: an init from it fails
    peerPort = await freePort();
    await withClient(db.url, async (client) => {
      await registerNode(client, { node_id: local, host: '127.0.0.1', port: clusterA().port, dbname: db.name, user: 'postgres', is_local: true });
      await registerNode(client, { node_id: peer, host: '127.0.0.1', port: peerPort, dbname: 'elsewhere', user: 'postgres' });
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    if (db) await dropDatabase(clusterA(), db.name);
  });

  // The registry, the audit trail and the init tables as they are.
  async function everything() {
    const [init] = await query(
      db.url,
      `SELECT (SELECT count(*)::int FROM steep_repl.init_progress) AS progress,
              (SELECT count(*)::int FROM graphile_worker._private_jobs) AS jobs`,
    );
    return { registry: await registryState(db.url), init };
  }

  it('node register: a port or priority past an integer exits 2 with the value and the range', async () => {
    const before = await everything();
    const cases: Array<[string[], RegExp]> = [
      [['--port', '99999999999999999999'], /error: port 99999999999999999999 of node n1 is outside 1-65535/],
      [['--port', '-5'], /error: port -5 of node n1 is outside 1-65535/],
      [['--port', '65536'], /error: port 65536 of node n1 is outside 1-65535/],
      [['--priority', '99999999999999999999'], /error: priority 99999999999999999999 of node n1 is outside 1-100/],
      [['--port', '5e3'], /Expected an integer but received: 5e3/],
    ];
    for (const [flags, message] of cases) {
      const result = await runCli(['node', 'register', 'n1', '--host', 'h', '--dbname', 'd', ...flags, '--db', db.url]);
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(message);
    }
    expect(await everything()).toEqual(before);
  });

  it('refuses a second id for the same host, port and database (SR004, exit 2), naming the registered one', async () => {
    const before = await everything();
    // spaces around the host and its case do not make another address
    const twin = await runCli(['node', 'register', 'Twin', '--host', ' 127.0.0.1 ', '--port', String(peerPort), '--dbname', 'elsewhere', '--db', db.url]);
    expect(twin.code).toBe(2);
    expect(twin.stderr).toContain(`error: 127.0.0.1:${peerPort}/elsewhere is already registered as node "peer select"`);
    expect(twin.stderr).toContain(`hint: use the id "peer select" for it, or remove that registration first (steep-repl node remove 'peer select')`);
    await expect(
      query(db.url, 'SELECT steep_repl.register_node($1, $2, $3, $4)', ['twin 2', 'LOCALHOST', peerPort, 'elsewhere']),
    ).resolves.toHaveLength(1);
    await query(db.url, 'SELECT steep_repl.remove_node($1)', ['twin 2']);
    await expect(
      query(db.url, 'SELECT steep_repl.register_node($1, $2, $3, $4)', ['twin 3', '127.0.0.1', clusterA().port, db.name]),
    ).rejects.toMatchObject({ code: 'SR004', message: `127.0.0.1:${clusterA().port}/${db.name} is already registered as node "Input ""Checks"" ü"` });
    const after = await everything();
    // 'localhost' is another host text (documented): twin 2 came and went, two audit rows
    expect(after.registry.nodes).toEqual(before.registry.nodes);
    expect(after.registry.audit_rows).toBe(before.registry.audit_rows + 2);
    expect(after.init).toEqual(before.init);
  });

  it('range-checks timeout, reverse_slot_ttl and lag_threshold_bytes: SR004 from SQL, exit 2 from node start, nothing changed', async () => {
    const before = await everything();
    const sqlCases: Array<[object, string]> = [
      [{ timeout: 'infinity' }, 'option timeout must be from 1 to 31536000 seconds, got "infinity": out of range'],
      [{ timeout: 1e10 }, 'option timeout must be from 1 to 31536000 seconds, got 10000000000: out of range'],
      [{ timeout: '99999999999 years' }, 'option timeout must be from 1 to 31536000 seconds, got "99999999999 years": out of range'],
      [{ lag_threshold_bytes: 1e30 }, 'option lag_threshold_bytes must be from 0 to 1099511627776 bytes (1024 GB), got 1000000000000000000000000000000: out of range'],
      [{ lag_threshold_bytes: '1e30' }, 'option lag_threshold_bytes must be from 0 to 1099511627776 bytes (1024 GB), got "1e30": out of range'],
      [{ timeout: 'soon' }, `option timeout must be a number of seconds or an interval such as '2 hours', got "soon"`],
      [{ reverse_slot_ttl: '2 years' }, 'option reverse_slot_ttl must be from 0 to 31536000 seconds, got "2 years": out of range'],
      [{ reverse_slot_ttl: -1 }, 'option reverse_slot_ttl must be from 0 to 31536000 seconds, got -1: out of range'],
    ];
    for (const [options, message] of sqlCases) {
      await expect(query(db.url, 'SELECT steep_repl.start_init($1, $2, NULL, $3)', [local, peer, options])).rejects.toMatchObject({
        code: 'SR004',
        message,
      });
    }
    for (const timeout of ['infinity', '1e10', '99999999999 years']) {
      const result = await runCli(['node', 'start', local, '--from', peer, '--timeout', timeout, '--no-wait', '--db', db.url]);
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
      expect(result.stderr).toContain(`option timeout must be from 1 to 31536000 seconds, got "${timeout}": out of range`);
      expect(result.stderr).toContain("hint: at most a year ('1 year'); leave timeout out for no limit");
    }
    const ttl = await runCli(['node', 'start', local, '--from', peer, '--reverse-slot-ttl', '2 years', '--no-wait', '--db', db.url]);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain("hint: at most a year ('1 year'); leave reverse_slot_ttl out for the default, 86400 seconds");
    expect(await everything()).toEqual(before);
  });

  it('--resume keeps the schema-sync choice of the failed init and changes only what it names', async () => {
    const agent = await AgentProcess.start(db.url, [], { STEEP_REPL_SOURCE_GRACE_MS: '500' });
    const options = async () => (await query(db.url, 'SELECT options FROM steep_repl.init_progress'))[0]?.options;
    const failed = async () => {
      await waitUntil('the init to fail', async () => (await query(db.url, 'SELECT init_state FROM steep_repl.nodes WHERE is_local'))[0].init_state === 'failed');
    };
    const start = await runCli(['node', 'start', local, '--from', peer, '--schema-sync', 'auto', '--no-wait', '--db', db.url]);
    expect(start.code).toBe(0);
    await failed();
    expect(await options()).toMatchObject({ schema_sync: 'auto', timeout: null });

    const resumed = await runCli(['node', 'start', local, '--from', peer, '--resume', '--timeout', '2 hours', '--no-wait', '--db', db.url]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(await options()).toMatchObject({ schema_sync: 'auto', timeout: 7200 });
    await failed();
    // from SQL, the same: only the named option changes
    await query(db.url, `SELECT steep_repl.start_init($1, $2, NULL, '{"resume": true, "lag_threshold_bytes": "2MB"}')`, [local, peer]);
    expect(await options()).toMatchObject({ schema_sync: 'auto', timeout: 7200, lag_threshold_bytes: 2097152 });
    await failed();

    const cancel = await runCli(['node', 'cancel', local, '--db', db.url]);
    expect(cancel.code).toBe(0);
    expect((await query(db.url, 'SELECT init_state FROM steep_repl.nodes WHERE is_local'))[0].init_state).toBe('uninitialized');
    await agent.stop();
  });
});

// Item 14: a source role without CREATE on its database is named, with the
// GRANT to run, before anything is created; once granted, the same role's
// init goes through.
describe('init privileges', () => {
  let pair: InitPair;
  const role = `steep "limited" ü ${process.pid}`;
  const roleIdent = `"${role.replace(/"/g, '""')}"`;
  const roleLiteral = `'${role.replace(/'/g, "''")}'`;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'input_priv', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Priv src', targetId: 'priv "tgt"', rows: 500 });
    await query(clusterA().url(), `CREATE ROLE ${roleIdent} LOGIN REPLICATION`);
    // everything but CREATE on the database: it owns and reads the user
    // tables and sequences, and reads steep_repl
    await query(
      pair.source.url,
      `GRANT USAGE ON SCHEMA steep_repl, public, "Sales ünit" TO ${roleIdent};
       GRANT SELECT ON ALL TABLES IN SCHEMA steep_repl TO ${roleIdent};
       DO $$ DECLARE r record; BEGIN
         FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname IN ('public', 'Sales ünit') AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
                     AND (c.relkind <> 'S' OR NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))) LOOP
           EXECUTE format('ALTER TABLE %s OWNER TO %I', r.rel, ${roleLiteral});
         END LOOP;
         FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c WHERE c.relispartition LOOP
           EXECUTE format('ALTER TABLE %s OWNER TO %I', r.rel, ${roleLiteral});
         END LOOP; END $$;`,
    );
    // the target's agent connects to the source as that role
    await query(pair.target.url, 'UPDATE steep_repl.nodes SET user_name = $1 WHERE node_id = $2', [role, pair.source.id]);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
    await query(clusterA().url(), `DROP ROLE IF EXISTS ${roleIdent}`).catch(() => undefined);
  });

  it('names the missing CREATE privilege, the role and the GRANT, creating nothing; granted, the init completes', async () => {
    const agent = await AgentProcess.start(pair.target.url);
    const refused = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `role ${roleIdent} on source node Priv src lacks CREATE on database "${pair.source.name}" (to create the publication)`,
    );
    expect(refused.stderr).toContain(`GRANT CREATE ON DATABASE "${pair.source.name}" TO ${roleIdent};`);
    // only that one is missing
    expect(refused.stderr).not.toMatch(/REPLICATION attribute|ownership of|SELECT on|pg_create_subscription/);
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    const [progress] = await query(pair.target.url, 'SELECT error FROM steep_repl.init_progress');
    expect(progress.error).toContain(`GRANT CREATE ON DATABASE "${pair.source.name}" TO ${roleIdent};`);

    await query(pair.source.url, `GRANT CREATE ON DATABASE "${pair.source.name}" TO ${roleIdent}`);
    expect((await runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url])).code).toBe(0);
    const started = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    expect(started.stderr).not.toMatch(/error/);
    expect(started.code).toBe(0);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    await agent.stop();
  });
});
