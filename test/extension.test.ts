// CREATE EXTENSION steep_repl installs exactly what the migrations install,
// and so does ALTER EXTENSION steep_repl UPDATE from every older release.
// The server finds the generated script through PostgreSQL 18's
// extension_control_path (superuser-settable per session), pointed at a
// directory of this test's own: nothing is written into the server's
// installation under node_modules.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import {
  buildExtensionScript,
  buildUpdateScript,
  checkReleases,
  extensionFolder,
  extensionVersion,
  releases,
  writeExtensionScript,
  writeExtensionScripts,
} from '../extension/build';
import { claimRunDir, clusterRoot } from '../lib/embedded-cluster';
import { migrationsFolder } from '../lib/paths';
import { committedMigrations } from '../lib/schema-files';
import { clusterA, createDatabase, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { pgError } from './support/notifications';

const guard = '\\echo Use "CREATE EXTENSION steep_repl" to load this file. \\quit';

// Everything in schema steep_repl that a DBA could tell apart, as plain rows.
const catalogQueries: Record<string, string> = {
  relations: `SELECT c.relname, c.relkind, c.relpersistence, obj_description(c.oid, 'pg_class') AS comment
                FROM pg_class c WHERE c.relnamespace = 'steep_repl'::regnamespace ORDER BY c.relname`,
  columns: `SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
                   pg_get_expr(d.adbin, d.adrelid) AS default, a.attnotnull, a.attidentity, a.attgenerated,
                   col_description(c.oid, a.attnum) AS comment
              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
             WHERE c.relnamespace = 'steep_repl'::regnamespace AND c.relkind IN ('r', 'v', 'p')
             ORDER BY c.relname, a.attnum`,
  constraints: `SELECT conrelid::regclass::text AS rel, conname, contype, pg_get_constraintdef(oid) AS def
                  FROM pg_constraint WHERE connamespace = 'steep_repl'::regnamespace ORDER BY 1, 2`,
  indexes: `SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
              FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'steep_repl'::regnamespace)
             ORDER BY 1`,
  functions: `SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result,
                     l.lanname, p.provolatile, p.prosecdef, p.proconfig, p.prosrc
                FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
               WHERE p.pronamespace = 'steep_repl'::regnamespace ORDER BY 1, 2`,
  triggers: `SELECT tgrelid::regclass::text AS rel, tgname, pg_get_triggerdef(oid) AS def
               FROM pg_trigger WHERE NOT tgisinternal
                AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'steep_repl'::regnamespace)
              ORDER BY 1, 2`,
  views: `SELECT viewname, definition FROM pg_views WHERE schemaname = 'steep_repl' ORDER BY 1`,
  sequences: `SELECT seqrelid::regclass::text AS name, format_type(seqtypid, NULL) AS type, seqstart, seqincrement, seqmax, seqmin, seqcycle
                FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'steep_repl'::regnamespace)
               ORDER BY 1`,
  init_states: 'SELECT * FROM steep_repl.init_states ORDER BY state',
  init_transitions: 'SELECT * FROM steep_repl.init_transitions ORDER BY from_state, to_state',
  init_methods: 'SELECT * FROM steep_repl.init_methods ORDER BY method',
  init_option_specs: 'SELECT * FROM steep_repl.init_option_specs ORDER BY option',
};

// Relations and functions of schema steep_repl that are no member of the extension.
const looseObjects = `SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'steep_repl'::regnamespace AND c.relkind IN ('r', 'v', 'S')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
       UNION ALL
       SELECT p.proname FROM pg_proc p
        WHERE p.pronamespace = 'steep_repl'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')`;

// As relation names: a dropped relation left behind shows as a bare oid.
const extensionRow = "SELECT extversion, extconfig::regclass[]::text[] AS config, extcondition FROM pg_extension WHERE extname = 'steep_repl'";

// The script 0.1.0 shipped (extension/build.ts at 73dc021^), byte for byte.
const shipped010 = 'b5eeec77dc632a094bfe15afbe4f4219dde51b3e0b4577331d02793288fd426e';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function catalog(url: string): Promise<Record<string, unknown[]>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, unknown[]> = {};
    for (const [name, sql] of Object.entries(catalogQueries)) out[name] = (await client.query(sql)).rows;
    return out;
  } finally {
    await client.end();
  }
}

function psqlPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

describe('extension steep_repl', () => {
  const cluster = clusterA();
  let runDir: string;
  let controlPath: string;
  let script: string;
  const databases: string[] = [];
  let viaExtension: { name: string; url: string };
  let viaMigrations: { name: string; url: string };
  // installed at 0.1.0, then updated; the user's rows as they were before
  let viaUpdate: { name: string; url: string };
  let rowsBefore: { nodes: unknown[]; audit: unknown[] };

  // A session that finds the extension in this test's directory first.
  async function withExtensionPath<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`SET extension_control_path = ${client.escapeLiteral(`${runDir}:$system`)}`);
      return await work(client);
    } finally {
      await client.end();
    }
  }

  async function database(tag: string): Promise<{ name: string; url: string }> {
    const db = await createDatabase(cluster, tag);
    databases.push(db.name);
    return db;
  }

  beforeAll(async () => {
    // <dir>/extension/ holds control and script; the postgres OS user reads it.
    runDir = claimRunDir(clusterRoot('test-extension'));
    fs.chmodSync(runDir, 0o755);
    fs.mkdirSync(path.join(runDir, 'extension'), { mode: 0o755 });
    script = buildExtensionScript();
    fs.copyFileSync(path.join(extensionFolder, 'steep_repl.control'), path.join(runDir, 'extension', 'steep_repl.control'));
    fs.writeFileSync(path.join(runDir, 'extension', `steep_repl--${extensionVersion()}.sql`), script, { mode: 0o644 });
    for (const old of releases().slice(0, -1)) {
      const dir = path.join(runDir, 'extension');
      fs.writeFileSync(path.join(dir, `steep_repl--${old.version}--${extensionVersion()}.sql`), buildUpdateScript(old.version), { mode: 0o644 });
    }
    fs.writeFileSync(path.join(runDir, 'extension', 'steep_repl--0.1.0.sql'), buildExtensionScript('0.1.0'), { mode: 0o644 });
    controlPath = runDir;

    viaExtension = await database('ext_create');
    await withExtensionPath(viaExtension.url, (c) => c.query('CREATE EXTENSION steep_repl'));
    viaMigrations = await createNodeDatabase(cluster, 'ext_migrate');
    databases.push(viaMigrations.name);

    viaUpdate = await database('ext_update');
    await withExtensionPath(viaUpdate.url, async (c) => {
      await c.query("CREATE EXTENSION steep_repl VERSION '0.1.0'");
      await c.query("SELECT steep_repl.register_node('Old \"node\"', 'h', 5433, 'd', p_is_local => true)");
      await c.query("SELECT steep_repl.transition('Old \"node\"', 'preparing')");
      const read = async () => ({
        nodes: (await c.query('SELECT * FROM steep_repl.nodes ORDER BY node_id')).rows,
        audit: (await c.query('SELECT * FROM steep_repl.audit_log ORDER BY audit_id')).rows,
      });
      rowsBefore = await read();
      await c.query('ALTER EXTENSION steep_repl UPDATE');
    });
  });

  afterAll(async () => {
    for (const name of databases) await dropDatabase(cluster, name);
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  });

  it('is generated from every committed migration, in order, behind the psql guard', () => {
    const committed = fs.readdirSync(path.join(migrationsFolder, 'committed')).filter((f) => /^\d{6}.*\.sql$/.test(f)).sort();
    expect(committed.length).toBeGreaterThan(0);
    const lines = script.split('\n');
    expect(lines.find((l) => l.trim() !== '' && !l.startsWith('--'))).toBe(guard);
    const order = committed.map((f) => script.indexOf(`-- from migrations/committed/${f}\n`));
    expect(order.every((i) => i > script.indexOf(guard))).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(script).not.toMatch(/^--! /m);
    expect(script).toContain("pg_catalog.pg_extension_config_dump('steep_repl.nodes', '')");

    const written = writeExtensionScript();
    expect(written).toBe(path.join(extensionFolder, `steep_repl--${extensionVersion()}.sql`));
    expect(fs.readFileSync(written, 'utf8')).toBe(script);
  });

  it('writes an update script from every older release: the migrations it lacks, then every routine', () => {
    const list = releases();
    expect(list.map((r) => [r.version, r.through])).toEqual(expect.arrayContaining([['0.1.0', '000003'], ['0.2.0', '000004']]));
    expect(list[list.length - 1].version).toBe(extensionVersion());
    expect(sha256(buildExtensionScript('0.1.0'))).toBe(shipped010);

    const written = writeExtensionScripts();
    const updates = list.slice(0, -1).map((r) => path.join(extensionFolder, `steep_repl--${r.version}--${extensionVersion()}.sql`));
    expect(written).toEqual([path.join(extensionFolder, `steep_repl--${extensionVersion()}.sql`), ...updates]);
    expect(fs.readdirSync(extensionFolder).filter((f) => f.endsWith('.sql')).sort()).toEqual(written.map((f) => path.basename(f)).sort());

    const update = fs.readFileSync(updates[0], 'utf8');
    expect(update).toBe(buildUpdateScript('0.1.0'));
    expect(update.split('\n').find((l) => l.trim() !== '' && !l.startsWith('--'))).toBe(
      `\\echo Use "ALTER EXTENSION steep_repl UPDATE TO '${extensionVersion()}'" to load this file. \\quit`,
    );
    for (const { file } of committedMigrations()) {
      const after010 = path.basename(file).slice(0, 6) > list[0].through;
      expect({ [file]: update.includes(`-- from migrations/${file}\n`) }).toEqual({ [file]: after010 });
    }
    expect(update.indexOf('-- from migrations/functions/transition.sql\n')).toBeGreaterThan(update.indexOf('-- from migrations/committed/000004'));
    expect(update).not.toMatch(/^--! /m);
  });

  it('refuses to build while the newest migration is in no release, or the control file names another version', () => {
    const list = releases();
    const migrations = committedMigrations();
    const extra = [...migrations, { file: 'committed/999999-unreleased.sql', body: 'SELECT 1;' }];
    expect(() => checkReleases(list, extra, extensionVersion())).toThrow(/999999-unreleased\.sql is in no release/);
    expect(() => checkReleases(list, migrations, '9.9.9')).toThrow(/default_version '9\.9\.9'/);
    expect(() => checkReleases(list, migrations, extensionVersion())).not.toThrow();
  });

  it('installs the same catalog as the migrations', async () => {
    const [fromExtension, fromMigrations] = await Promise.all([catalog(viaExtension.url), catalog(viaMigrations.url)]);
    // not vacuous: the schema is really there
    expect((fromExtension.functions as Array<{ proname: string }>).map((f) => f.proname)).toEqual(
      expect.arrayContaining(['transition', 'emit_event', 'register_node', 'remove_node', 'request_job_cancel']),
    );
    expect(fromExtension.init_transitions).toHaveLength(26);
    expect(fromExtension.triggers.length).toBeGreaterThanOrEqual(3);
    for (const name of Object.keys(catalogQueries)) {
      expect({ [name]: fromExtension[name] }).toEqual({ [name]: fromMigrations[name] });
    }
  });

  it('owns every object it created, and marks the user tables for pg_dump', async () => {
    const loose = await query(viaExtension.url, looseObjects);
    expect(loose).toEqual([]);
    const [ext] = await query(viaExtension.url, extensionRow);
    expect(ext.extversion).toBe(extensionVersion());
    expect(ext.config).toEqual(expect.arrayContaining(['steep_repl.nodes', 'steep_repl.audit_log', 'steep_repl.audit_log_audit_id_seq']));
    expect(ext.config).not.toContain('steep_repl.init_states');
  });

  it('updated from 0.1.0 by ALTER EXTENSION UPDATE, has the catalog of a fresh install and of the migrations', async () => {
    const [fromUpdate, fromExtension, fromMigrations] = await Promise.all([catalog(viaUpdate.url), catalog(viaExtension.url), catalog(viaMigrations.url)]);
    expect((fromUpdate.init_methods as Array<{ method: string }>).map((m) => m.method)).toEqual(expect.arrayContaining(['snapshot', 'direct']));
    expect(fromUpdate.init_option_specs.length).toBeGreaterThan(0);
    // dropped by 000004 (0.2.0) and never made again; snapshots was made again in 0.5.0
    expect((fromUpdate.relations as Array<{ relname: string }>).map((r) => r.relname)).not.toContain('coordinator_state');
    for (const name of Object.keys(catalogQueries)) {
      expect({ [name]: fromUpdate[name] }).toEqual({ [name]: fromExtension[name] });
      expect({ [name]: fromUpdate[name] }).toEqual({ [name]: fromMigrations[name] });
    }
    expect(await query(viaUpdate.url, looseObjects)).toEqual([]);
    const [updated] = await query(viaUpdate.url, extensionRow);
    const [fresh] = await query(viaExtension.url, extensionRow);
    expect(updated).toEqual(fresh);
    expect(updated.extversion).toBe(extensionVersion());
    // 0.1.0's snapshots (dropped by 0.2.0) left the list; 0.5.0's, 0.7.0's, 0.8.0's and 0.9.0's joined it
    expect(updated.config).toEqual([
      'steep_repl.nodes',
      'steep_repl.schema_fingerprints',
      'steep_repl.audit_log',
      'steep_repl.audit_log_audit_id_seq',
      'steep_repl.snapshots',
      'steep_repl.snapshot_parts',
      'steep_repl.verify_runs',
      'steep_repl.verify_runs_verify_id_seq',
      'steep_repl.verify_tables',
      'steep_repl.verify_differences',
      'steep_repl.node_divergence',
      'steep_repl.merge_runs',
      'steep_repl.merge_runs_merge_id_seq',
      'steep_repl.merge_tables',
      'steep_repl.merge_conflicts',
      'steep_repl.health_settings',
    ]);
  });

  it('keeps the user\'s rows through the update, and goes on from them', async () => {
    expect(rowsBefore.nodes).toHaveLength(1);
    expect(rowsBefore.audit.length).toBeGreaterThan(0);
    // 0.9.0 adds the watch's last round (none yet)
    expect(await query(viaUpdate.url, 'SELECT * FROM steep_repl.nodes ORDER BY node_id')).toEqual(
      (rowsBefore.nodes as Array<Record<string, unknown>>).map((n) => ({ ...n, replication_observed_at: null })),
    );
    expect(await query(viaUpdate.url, 'SELECT * FROM steep_repl.audit_log ORDER BY audit_id')).toEqual(rowsBefore.audit);
    const [row] = await query(viaUpdate.url, "SELECT (steep_repl.transition('Old \"node\"', 'copying')).init_state");
    expect(row.init_state).toBe('copying');
    const [last] = await query(viaUpdate.url, 'SELECT max(audit_id)::int AS id FROM steep_repl.audit_log');
    expect(last.id).toBeGreaterThan(Math.max(...(rowsBefore.audit as Array<{ audit_id: string }>).map((a) => Number(a.audit_id))));
  });

  it('works as a node database: the state machine runs in it', async () => {
    await query(viaExtension.url, "SELECT steep_repl.register_node('Ext \"node\"', 'h', 5432, 'd')");
    const [row] = await query(viaExtension.url, "SELECT (steep_repl.transition('Ext \"node\"', 'preparing')).init_state");
    expect(row.init_state).toBe('preparing');
  });

  it('is removed completely by DROP EXTENSION, and can be created again', async () => {
    const db = await database('ext_drop');
    await withExtensionPath(db.url, async (c) => {
      await c.query('CREATE EXTENSION steep_repl');
      await c.query("SELECT steep_repl.register_node('x', 'h', 5432, 'd')");
      await c.query('DROP EXTENSION steep_repl');
      const left = await c.query(
        `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'steep_repl')::int AS schemas,
                (SELECT count(*) FROM pg_extension WHERE extname = 'steep_repl')::int AS extensions,
                (SELECT count(*) FROM pg_proc WHERE proname IN ('transition', 'emit_event'))::int AS functions,
                (SELECT count(*) FROM pg_type WHERE typname = 'nodes')::int AS types`,
      );
      expect(left.rows).toEqual([{ schemas: 0, extensions: 0, functions: 0, types: 0 }]);
      await c.query('CREATE EXTENSION steep_repl');
      expect((await c.query('SELECT count(*)::int AS n FROM steep_repl.nodes')).rows[0].n).toBe(0);
    });
  });

  it('refuses to install over a schema the migrations installed, changing nothing', async () => {
    await withExtensionPath(viaMigrations.url, async (c) => {
      const before = (await c.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'steep_repl'::regnamespace")).rows[0].n;
      const err = await pgError(c.query('CREATE EXTENSION steep_repl'));
      expect(err.message).toContain('steep_repl');
      expect((await c.query("SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'steep_repl'")).rows[0].n).toBe(0);
      expect((await c.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'steep_repl'::regnamespace")).rows[0].n).toBe(before);
    });
  });

  it('refuses to run as a plain script, creating nothing', async () => {
    const db = await database('ext_script');
    const file = path.join(controlPath, 'extension', `steep_repl--${extensionVersion()}.sql`);
    const psql = psqlPath();
    if (psql) {
      const out = execFileSync(psql, ['-X', '-v', 'ON_ERROR_STOP=1', '-d', db.url, '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toContain('Use "CREATE EXTENSION steep_repl" to load this file.');
    }
    // Any other client stops at the guard's backslash.
    const err = await pgError(query(db.url, script));
    expect(err.code).toBe('42601');
    const [left] = await query(db.url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'steep_repl'");
    expect(left.n).toBe(0);
  });
});
