// The NOTIFY contract of docs/notifications.md, heard by a real LISTEN
// connection: steep_repl_events, steep_repl_progress, steep_repl_cancel.
import { Client } from 'pg';
import { clusterA, createNodeDatabase, dropDatabase } from './support/clusters';
import { ChannelRecorder, pgError } from './support/notifications';

const nodeId = 'Nœud "Ω" select';
const sourceId = "source's node";

describe('notification channels', () => {
  let db: { name: string; url: string };
  let sql: Client;
  let recorder: ChannelRecorder;

  beforeAll(async () => {
    db = await createNodeDatabase(clusterA(), 'notifications');
    sql = new Client({ connectionString: db.url });
    await sql.connect();
    recorder = await ChannelRecorder.listen(db.url, ['steep_repl_events', 'steep_repl_progress', 'steep_repl_cancel', 'steep_repl_state']);
  });

  afterAll(async () => {
    await sql?.end();
    await recorder?.close();
    if (db) await dropDatabase(clusterA(), db.name);
  });

  beforeEach(async () => {
    await sql.query('DELETE FROM steep_repl.nodes');
    await sql.query(
      "INSERT INTO steep_repl.nodes (node_id, node_name, host, dbname) VALUES ($1, 'n', 'h', 'd'), ($2, 's', 'h', 'd')",
      [nodeId, sourceId],
    );
    await recorder.fence(sql);
    recorder.take();
  });

  async function lastAuditId(): Promise<number> {
    return Number((await sql.query('SELECT coalesce(max(audit_id), 0) AS id FROM steep_repl.audit_log')).rows[0].id);
  }

  async function heard(): Promise<Array<{ channel: string; payload: any }>> {
    await recorder.fence(sql);
    return recorder.take();
  }

  describe('steep_repl_events', () => {
    it('carries event, node, audit id, time and details of the audit row', async () => {
      const details = { table: 'public."Order Lines"', rows: 12, note: 'ünïcödé ✓' };
      const auditId = Number((await sql.query('SELECT steep_repl.emit_event($1, $2, $3) AS id', ['init.table_started', nodeId, details])).rows[0].id);
      const notes = await heard();
      expect(notes).toEqual([
        {
          channel: 'steep_repl_events',
          payload: { event: 'init.table_started', node_id: nodeId, audit_id: auditId, at: expect.any(String), details },
        },
      ]);
      const [row] = (await sql.query('SELECT * FROM steep_repl.audit_log WHERE audit_id = $1', [auditId])).rows;
      expect(row).toMatchObject({ event: 'init.table_started', node_id: nodeId, details, from_state: null, to_state: null });
      expect(new Date(notes[0].payload.at).getTime()).toBe(row.occurred_at.getTime());
    });

    it('defaults details to {} and allows events of no node', async () => {
      await sql.query("SELECT steep_repl.emit_event('schema.sync_applied', NULL)");
      const [note] = await heard();
      expect(note.payload).toMatchObject({ event: 'schema.sync_applied', node_id: null, details: {} });
    });

    it.each([
      ['plain ASCII', 'x'.repeat(9000)],
      ['multibyte (3 bytes a character, 2700 characters)', '日'.repeat(2700)],
    ])('cuts a payload over 8000 bytes to the event identity: %s', async (_, blob) => {
      const details = { blob, table: 'big' };
      const auditId = Number((await sql.query('SELECT steep_repl.emit_event($1, $2, $3) AS id', ['init.table_failed', nodeId, details])).rows[0].id);
      await recorder.fence(sql);
      const raw = recorder.received;
      expect(raw).toHaveLength(1);
      expect(Buffer.byteLength(raw[0].payload)).toBeLessThan(8000);
      const [note] = recorder.take();
      expect(note.payload).toEqual({ event: 'init.table_failed', node_id: nodeId, audit_id: auditId, at: expect.any(String), truncated: true });
      const [row] = (await sql.query('SELECT details FROM steep_repl.audit_log WHERE audit_id = $1', [auditId])).rows;
      expect(row.details).toEqual(details);
    });

    it.each([['Init.Started'], ['init'], ['init.started;'], ['init.started '], [''], [null], [`init.${'x'.repeat(70)}`]])(
      'rejects the event name %p with SR004 and writes nothing',
      async (name) => {
        const before = await lastAuditId();
        const err = await pgError(sql.query('SELECT steep_repl.emit_event($1, $2)', [name, nodeId]));
        expect(err.code).toBe('SR004');
        expect(err.message).toContain('invalid event name');
        expect(await lastAuditId()).toBe(before);
        expect(await heard()).toEqual([]);
      },
    );

    it('keeps malformed event names out of audit_log even when written directly', async () => {
      const before = await lastAuditId();
      const err = await pgError(sql.query("INSERT INTO steep_repl.audit_log (event) VALUES ('Not An Event')"));
      expect(err.code).toBe('23514');
      expect(await lastAuditId()).toBe(before);
    });

    it('rejects a node id longer than any node id can be, writing nothing', async () => {
      const before = await lastAuditId();
      const err = await pgError(sql.query("SELECT steep_repl.emit_event('init.started', $1)", ['n'.repeat(5000)]));
      expect(err.code).toBe('SR004');
      expect(err.message.length).toBeLessThan(200);
      expect(await lastAuditId()).toBe(before);
      expect(await heard()).toEqual([]);
    });

    it('is transactional: a rolled-back event is neither stored nor announced', async () => {
      const before = await lastAuditId();
      await sql.query('BEGIN');
      await sql.query("SELECT steep_repl.emit_event('init.started', $1)", [nodeId]);
      await sql.query('ROLLBACK');
      expect(await lastAuditId()).toBe(before);
      expect(await heard()).toEqual([]);
    });

    it('announces node.registered and node.removed', async () => {
      await sql.query('SELECT steep_repl.register_node($1, $2, 6543, $3, $4, 7)', ['New "Node"', ' db.example ', 'app db', 'repl user']);
      await sql.query('SELECT steep_repl.remove_node($1)', ['New "Node"']);
      const notes = await heard();
      expect(notes.map((n) => [n.channel, n.payload.event, n.payload.node_id])).toEqual([
        ['steep_repl_events', 'node.registered', 'New "Node"'],
        ['steep_repl_events', 'node.removed', 'New "Node"'],
      ]);
      expect(notes[0].payload.details).toEqual({ host: 'db.example', port: 6543, dbname: 'app db', user: 'repl user', priority: 7, is_local: false });
      expect(notes[1].payload.details).toEqual({});
      const audit = (await sql.query("SELECT event FROM steep_repl.audit_log WHERE node_id = 'New \"Node\"' ORDER BY audit_id")).rows;
      expect(audit.map((r) => r.event)).toEqual(['node.registered', 'node.removed']);
    });

    it('announces nothing when registering a duplicate or removing an unknown node', async () => {
      const before = await lastAuditId();
      expect((await pgError(sql.query("SELECT steep_repl.register_node($1, 'h', 5432, 'd')", [nodeId]))).code).toBe('SR002');
      expect((await pgError(sql.query('SELECT steep_repl.remove_node($1)', ['nobody']))).code).toBe('SR001');
      expect(await lastAuditId()).toBe(before);
      expect(await heard()).toEqual([]);
    });
  });

  describe('steep_repl_progress', () => {
    // The columns migration 000001 defines; later migrations may add more.
    const progressColumns = [
      'node_id', 'source_node_id', 'method', 'phase', 'overall_percent', 'tables_total', 'tables_done', 'current_table',
      'current_table_percent', 'rows_total', 'rows_copied', 'bytes_total', 'bytes_copied', 'rows_per_second',
      'bytes_per_second', 'eta_seconds', 'workers_active', 'workers_max', 'lag_bytes', 'error', 'job_id',
      'cancel_requested_at', 'started_at', 'updated_at',
    ];

    async function insertProgress(): Promise<void> {
      await sql.query(
        `INSERT INTO steep_repl.init_progress (node_id, source_node_id, phase, tables_total, rows_total, workers_max, options)
         VALUES ($1, $2, 'copying', 4, 1000, 4, '{"secret_option": 1}')`,
        [nodeId, sourceId],
      );
    }

    it('announces an inserted and an updated row with every column but options and not_replicated', async () => {
      await insertProgress();
      await sql.query(
        `UPDATE steep_repl.init_progress SET overall_percent = 37.5, tables_done = 1, current_table = 'public."Big Table"',
           current_table_percent = 12.25, rows_copied = 375, bytes_copied = 40960, rows_per_second = 1234.5,
           eta_seconds = 9, workers_active = 3, lag_bytes = 0, updated_at = now() WHERE node_id = $1`,
        [nodeId],
      );
      const notes = await heard();
      expect(notes.map((n) => n.channel)).toEqual(['steep_repl_progress', 'steep_repl_progress']);
      const [inserted, updated] = notes.map((n) => n.payload);
      const tableColumns = (
        await sql.query("SELECT attname FROM pg_attribute WHERE attrelid = 'steep_repl.init_progress'::regclass AND attnum > 0 AND NOT attisdropped")
      ).rows.map((r) => r.attname);
      expect(Object.keys(inserted).sort()).toEqual(tableColumns.filter((c) => c !== 'options' && c !== 'not_replicated').sort());
      expect(Object.keys(inserted)).toEqual(expect.arrayContaining(progressColumns));
      expect(inserted).toMatchObject({
        node_id: nodeId, source_node_id: sourceId, method: 'snapshot', phase: 'copying', overall_percent: 0,
        tables_total: 4, tables_done: 0, rows_total: 1000, rows_copied: 0, workers_max: 4, error: null,
      });
      expect(updated).toMatchObject({
        overall_percent: 37.5, tables_done: 1, current_table: 'public."Big Table"', current_table_percent: 12.25,
        rows_copied: 375, bytes_copied: 40960, rows_per_second: 1234.5, eta_seconds: 9, workers_active: 3, lag_bytes: 0,
      });
      expect(new Date(updated.updated_at).getTime()).not.toBeNaN();
    });

    it.each([
      ['overall_percent = 100.5'],
      ['overall_percent = -1'],
      ['tables_done = 5'],
      ['tables_done = -1'],
      ['rows_copied = -1'],
      ['bytes_copied = -10'],
      ['rows_total = -1'],
      ['workers_max = 17'],
      ['workers_max = 0'],
      ['workers_active = -1'],
      ['current_table_percent = 101'],
      ["phase = 'bogus'"],
      ['eta_seconds = -5'],
    ])('refuses %s (CHECK) and changes nothing', async (assignment) => {
      await insertProgress();
      await heard();
      const before = (await sql.query('SELECT * FROM steep_repl.init_progress')).rows;
      const err = await pgError(sql.query(`UPDATE steep_repl.init_progress SET ${assignment} WHERE node_id = $1`, [nodeId]));
      expect(err.code).toBe('23514');
      expect((await sql.query('SELECT * FROM steep_repl.init_progress')).rows).toEqual(before);
      expect(await heard()).toEqual([]);
    });

    it('refuses an out-of-range row on insert too', async () => {
      const err = await pgError(
        sql.query("INSERT INTO steep_repl.init_progress (node_id, tables_total, tables_done) VALUES ($1, 2, 3)", [nodeId]),
      );
      expect(err.code).toBe('23514');
      const method = await pgError(
        sql.query("INSERT INTO steep_repl.init_progress (node_id, method) VALUES ($1, 'rsync')", [nodeId]),
      );
      expect(method.code).toBe('23514');
      expect((await sql.query('SELECT count(*)::int AS n FROM steep_repl.init_progress')).rows[0].n).toBe(0);
      expect(await heard()).toEqual([]);
    });

    it('cuts a long error in the payload, keeping the full text in the row', async () => {
      await insertProgress();
      await heard();
      const error = `COPY failed: ${'ß'.repeat(6000)}`;
      await sql.query("UPDATE steep_repl.init_progress SET phase = 'failed', error = $2 WHERE node_id = $1", [nodeId, error]);
      await recorder.fence(sql);
      expect(recorder.received).toHaveLength(1);
      expect(Buffer.byteLength(recorder.received[0].payload)).toBeLessThan(8000);
      const [note] = recorder.take();
      expect(note.payload).toMatchObject({ node_id: nodeId, phase: 'failed', truncated: true, error: error.slice(0, 1000) });
      expect((await sql.query('SELECT error FROM steep_repl.init_progress')).rows[0].error).toBe(error);
    });
  });

  describe('steep_repl_cancel', () => {
    it('carries the node and the job to cancel', async () => {
      await sql.query('SELECT steep_repl.request_job_cancel($1, 42)', [nodeId]);
      await sql.query('SELECT steep_repl.request_job_cancel($1)', [nodeId]);
      await sql.query('SELECT steep_repl.request_job_cancel(NULL, 7)');
      expect(await heard()).toEqual([
        { channel: 'steep_repl_cancel', payload: { node_id: nodeId, job_id: 42 } },
        { channel: 'steep_repl_cancel', payload: { node_id: nodeId, job_id: null } },
        { channel: 'steep_repl_cancel', payload: { node_id: null, job_id: 7 } },
      ]);
    });

    it('refuses an unknown node or a request naming nothing, announcing nothing', async () => {
      expect((await pgError(sql.query("SELECT steep_repl.request_job_cancel('no such node')"))).code).toBe('SR001');
      expect((await pgError(sql.query('SELECT steep_repl.request_job_cancel(NULL, NULL)'))).code).toBe('SR004');
      expect(await heard()).toEqual([]);
    });
  });
});
