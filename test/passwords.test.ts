// Passwords the libpq ways (URL, PGPASSWORD, a pgpass file) against a role
// that must authenticate with SCRAM, and proof that the password shows up
// nowhere: not in tables, job payloads, CLI output or the agent's log.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { escapeLiteral } from 'pg';
import { redactSecrets } from '../lib/connection';
import { freePort, passwordRole } from '../lib/embedded-cluster';
import { registerNode } from '../lib/sql/registerNode';
import { clusterA, createNodeDatabase, dropDatabase, query, withClient } from './support/clusters';
import { AgentProcess, CliResult, runCli, stopAllAgents } from './support/processes';
import { registryState } from './support/registry-state';

const cluster = clusterA();
const password = `Pw-7q!x: s3cr@t/#?&'ü`;
const wrongPassword = 'Wr0ng-9z!k';
// Fragments that betray the password even when cut or encoded.
const leaks = [password, encodeURIComponent(password), '7q!x', 's3cr@t', 's3cr%40t', wrongPassword];

function expectNoLeak(text: string): void {
  for (const fragment of leaks) expect(text).not.toContain(fragment);
}

function expectNoLeakIn(result: CliResult): void {
  expectNoLeak(result.stdout);
  expectNoLeak(result.stderr);
}

describe('passwords', () => {
  let db: { name: string; url: string };
  let tmp: string;
  let plainUrl: string;
  let passwordUrl: string;
  // No password from anywhere but what the test gives.
  const clean = (extra: Record<string, string | undefined> = {}) => ({
    STEEP_REPL_DB: undefined,
    PGPASSWORD: undefined,
    PGPASSFILE: path.join(tmp, 'no-such-pgpass'),
    ...extra,
  });

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-pw-'));
    db = await createNodeDatabase(cluster, 'passwords');
    // The role is cluster-wide; its password is this file's (the only user).
    await query(
      cluster.url(),
      `DO $$ BEGIN
         CREATE ROLE ${passwordRole} LOGIN SUPERUSER;
       EXCEPTION WHEN duplicate_object THEN NULL;
       END $$`,
    );
    await query(cluster.url(), `ALTER ROLE ${passwordRole} PASSWORD ${escapeLiteral(password)}`);
    const host = `127.0.0.1:${cluster.port}/${db.name}`;
    plainUrl = `postgres://${passwordRole}@${host}`;
    passwordUrl = `postgres://${passwordRole}:${encodeURIComponent(password)}@${host}`;
  });
  afterAll(async () => {
    await stopAllAgents();
    await dropDatabase(cluster, db.name);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('needs a password: none given is a connection error (exit 6)', async () => {
    const result = await runCli(['node', 'list', '--db', plainUrl], clean());
    expect(result.code).toBe(6);
    expect(result.stderr).toContain(`cannot connect to 127.0.0.1:${cluster.port}/${db.name}`);
  });

  it('takes the password from the URL', async () => {
    const install = await runCli(['install', '--db', passwordUrl], clean());
    expect({ code: install.code, stderr: install.stderr }).toEqual({ code: 0, stderr: '' });
    expectNoLeakIn(install);
    const reg = await runCli(
      ['node', 'register', 'pw_local', '--host', '127.0.0.1', '--port', String(cluster.port), '--dbname', db.name,
        '--user', passwordRole, '--local', '--json', '--db', passwordUrl],
      clean(),
    );
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.stdout)).toMatchObject({ node_id: 'pw_local', user_name: passwordRole });
    expectNoLeakIn(reg);
  });

  it('takes the password from PGPASSWORD', async () => {
    const env = clean({ PGPASSWORD: password });
    const list = await runCli(['node', 'list', '--json', '--db', plainUrl], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((n: { node_id: string }) => n.node_id)).toEqual(['pw_local']);
    expectNoLeakIn(list);
    const install = await runCli(['install', '--db', plainUrl], env);
    expect(install.code).toBe(0);
  });

  it('takes the password from a pgpass file (PGPASSFILE, mode 0600), not from one others can read', async () => {
    const pgpass = path.join(tmp, 'pgpass');
    const escaped = password.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
    fs.writeFileSync(pgpass, `127.0.0.1:${cluster.port}:*:${passwordRole}:${escaped}\n`, { mode: 0o600 });
    fs.chmodSync(pgpass, 0o600);
    const status = await runCli(['node', 'status', '--json', '--db', plainUrl], clean({ PGPASSFILE: pgpass }));
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).node_id).toBe('pw_local');
    expectNoLeakIn(status);
    // libpq's rule: a pgpass file readable by others is ignored.
    fs.chmodSync(pgpass, 0o644);
    const ignored = await runCli(['node', 'status', '--db', plainUrl], clean({ PGPASSFILE: pgpass }));
    expect(ignored.code).toBe(6);
    expectNoLeakIn(ignored);
  });

  it('a wrong password: exit 6, the message names the target, never the password', async () => {
    const wrongUrl = `postgres://${passwordRole}:${wrongPassword}@127.0.0.1:${cluster.port}/${db.name}`;
    const before = await registryState(db.url);
    for (const [args, env] of [
      [['node', 'register', 'x', '--host', 'h', '--dbname', 'd', '--db', wrongUrl], clean()],
      [['node', 'list', '--db', plainUrl], clean({ PGPASSWORD: wrongPassword })],
      [['install', '--db', wrongUrl], clean()],
    ] as Array<[string[], Record<string, string | undefined>]>) {
      const result = await runCli(args, env);
      expect({ args, code: result.code }).toEqual({ args, code: 6 });
      expect(result.stderr).toContain(`cannot connect to 127.0.0.1:${cluster.port}/${db.name}`);
      expect(result.stderr).toContain(`password authentication failed for user "${passwordRole}"`);
      expect(result.stderr).toMatch(/hint: check the user and the password/);
      expectNoLeakIn(result);
    }
    const agent = new AgentProcess(wrongUrl, [], clean());
    expect(await agent.waitForExit()).toBe(6);
    expectNoLeak(agent.raw.join('\n'));
    expect(await registryState(db.url)).toEqual(before);
  });

  it('a malformed URL with a password: exit 2, the password not echoed', async () => {
    for (const url of [
      `postgres://${passwordRole}:${encodeURIComponent(password)}@127.0.0.1:notaport/app`,
      `host=127.0.0.1 port=${cluster.port} dbname=${db.name} password=${wrongPassword}`,
    ]) {
      const viaFlag = await runCli(['node', 'list', '--db', url], clean());
      expect(viaFlag.code).toBe(2);
      expect(viaFlag.stderr).toMatch(/--db is not a (valid )?connection URL: expected postgres:\/\/user@host:5432\/dbname/);
      expectNoLeakIn(viaFlag);
      const viaEnv = await runCli(['node', 'list'], clean({ STEEP_REPL_DB: url }));
      expect(viaEnv.code).toBe(2);
      expect(viaEnv.stderr).toMatch(/STEEP_REPL_DB is not a/);
      expectNoLeakIn(viaEnv);
    }
  });

  it('an agent on a password URL runs jobs and never logs the password', async () => {
    // pw_local is probed as steep_pw_user without a password in the agent's
    // environment (it fails: the registry holds none); peer_closed fails to connect.
    const closedPort = await freePort();
    await withClient(db.url, (client) => registerNode(client, { node_id: 'peer_closed', host: '127.0.0.1', port: closedPort, dbname: 'app', user: passwordRole }));
    const agent = new AgentProcess(passwordUrl, ['--heartbeat-interval', '1'], clean());
    await agent.waitForEvent('agent.started');
    const ids: string[] = [];
    for (const node of ['pw_local', 'peer_closed']) {
      const [{ id }] = await query(db.url, 'SELECT steep_repl.enqueue($1, $2) AS id', ['probe_node', { node_id: node }]);
      ids.push(String(id));
    }
    for (const id of ids) await agent.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === id);
    const probes = agent.lines.filter((l) => l.event === 'node.probed');
    expect(probes.map((p) => [p.node_id, p.status]).sort()).toEqual([
      ['peer_closed', 'unreachable'],
      ['pw_local', 'unreachable'],
    ]);
    expect(await agent.stop()).toBe(0);
    expectNoLeak(agent.raw.join('\n'));

    // The same agent with PGPASSWORD: the probe of pw_local now authenticates.
    const withEnv = new AgentProcess(plainUrl, [], clean({ PGPASSWORD: password }));
    await withEnv.waitForEvent('agent.started');
    const [{ id }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "pw_local"}') AS id`);
    await withEnv.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === String(id));
    expect(withEnv.lines.find((l) => l.event === 'node.probed')).toMatchObject({ node_id: 'pw_local', status: 'healthy' });
    expect(await withEnv.stop()).toBe(0);
    expectNoLeak(withEnv.raw.join('\n'));
  });

  it('redacts passwords in any text meant for people', () => {
    expect(redactSecrets(`failed for postgres://u:${encodeURIComponent(password)}@h:5/db`)).toBe('failed for postgres://u:***@h:5/db');
    expect(redactSecrets('failed for postgres://u:raw@pass@h:5/db')).toBe('failed for postgres://u:***@h:5/db');
    expect(redactSecrets('{"url":"postgresql://u:pw@h","other":"a@b"}')).toBe('{"url":"postgresql://u:***@h","other":"a@b"}');
    expect(redactSecrets("host=h password='se cret' user=u")).toBe('host=h password=*** user=u');
    expect(redactSecrets('postgres://u@h/db')).toBe('postgres://u@h/db');
  });

  it('leaves the password in no table of the database, job payloads included', async () => {
    const tables = await query(
      db.url,
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
       WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['steep_repl.nodes', 'steep_repl.audit_log', 'graphile_worker._private_jobs']),
    );
    // A job still queued, enqueued over a password connection, is scanned too.
    await query(passwordUrl, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "pw_local"}')`);
    const [{ audit_rows, queued_jobs }] = await query(
      db.url,
      `SELECT (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows,
              (SELECT count(*)::int FROM graphile_worker._private_jobs) AS queued_jobs`,
    );
    expect(audit_rows).toBeGreaterThan(0);
    expect(queued_jobs).toBe(1);
    // The scan finds the password where it is.
    const [{ found }] = await query(db.url, 'SELECT strpos(ROW($1::text, 1)::text, $1) > 0 AS found', [password]);
    expect(found).toBe(true);
    for (const { name } of tables) {
      for (const fragment of leaks) {
        const [{ n }] = await query(db.url, `SELECT count(*)::int AS n FROM ${name} t WHERE strpos(t::text, $1) > 0`, [fragment]);
        expect({ table: name, fragment, n }).toEqual({ table: name, fragment, n: 0 });
      }
    }
  });
});
