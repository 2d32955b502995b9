// node prepare, complete, cancel, status and list for manual inits as a DBA
// runs them: real CLI processes on the shared PostgreSQL 18 clusters. The
// printed commands are read back as a shell reads them; every refusal
// proves nothing changed on either node. The backups themselves (pg_dump,
// pg_basebackup of PostgreSQL 15) and complete end to end are in
// test/manual-dump.test.ts and test/manual-basebackup.test.ts.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../lib/paths';
import { clusterA, clusterB, dropDatabase, query } from './support/clusters';
import { sourceDataSql, userSchemaSql } from './support/init-pair';
import { createNodeDb, dropReplicationObjects, NodeDb, registerIn, registerPair } from './support/node-pair';
import { AgentProcess, CliRun, runCli, startCli, stopAllAgents } from './support/processes';
import { registryState } from './support/registry-state';
import { TmuxSession } from './support/tmux';
import { waitUntil } from './support/wait';

const runJs = path.join(packageRoot, 'bin', 'run.js');

jest.setTimeout(120000);

// The words a POSIX shell makes of a printed command line.
function shellWords(line: string): string[] {
  const out = execFileSync('bash', ['-c', 'eval "set -- $1"; printf "%s\\0" "$@"', '_', line], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

// The printed line that starts with program, trimmed.
function printedLine(output: string, program: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`${program} `));
  if (lines.length !== 1) throw new Error(`expected one ${program} line in:\n${output}`);
  return lines[0];
}

async function preparedOutput(run: CliRun): Promise<string> {
  return waitUntil(
    'node prepare to print the next steps',
    () => {
      if (run.child.exitCode !== null) throw new Error(`node prepare exited ${run.child.exitCode}:\n${run.stdout}\n${run.stderr}`);
      return /holding snapshot/.test(run.stderr) && run.stdout;
    },
    30000,
    100,
  );
}

describe('node prepare, complete, cancel, status and list for manual inits', () => {
  let source: NodeDb;
  let target: NodeDb;
  let spare: NodeDb;
  // knows the source, which does not know it
  let lone: NodeDb;
  // a pg_basebackup target: registered in the source's registry only (its database would be the copy's)
  let copy: NodeDb;
  let work: string;
  let slotName: string;
  let spareSlot: string;
  let copySlot: string;

  beforeAll(async () => {
    source = await createNodeDb(clusterA(), 'man_cli_src', 'Quelle "M"');
    target = await createNodeDb(clusterB(), 'man_cli_tgt', 'ziel m');
    spare = await createNodeDb(clusterB(), 'man_cli_spare', 'Ersatz m');
    await registerPair(source, target);
    await registerPair(source, spare);
    lone = await createNodeDb(clusterB(), 'man_cli_lone', 'Einsam m');
    await registerIn(lone, lone);
    await registerIn(lone, source);
    await query(source.url, userSchemaSql);
    await query(source.url, sourceDataSql(2000));
    copy = { id: 'Kopie m', cluster: clusterB(), name: source.name, url: clusterB().url(source.name) };
    const names = await query(source.url, 'SELECT steep_repl.replication_name($1, $2) AS t, steep_repl.replication_name($1, $3) AS s, steep_repl.replication_name($1, $4) AS c', [
      source.id,
      target.id,
      spare.id,
      copy.id,
    ]);
    ({ t: slotName, s: spareSlot, c: copySlot } = names[0]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-man-cli-'));
  });
  afterAll(async () => {
    await stopAllAgents();
    await dropReplicationObjects([target, spare, source]);
    for (const db of [target, spare, lone]) await dropDatabase(db.cluster, db.name).catch(() => undefined);
    await dropDatabase(source.cluster, source.name).catch(() => undefined);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  // Everything a refused command must leave as it was, on every node.
  async function stateOf(): Promise<unknown> {
    const side = async (db: NodeDb) => {
      const { nodes, audit_rows } = await registryState(db.url);
      const [counts] = await query(
        db.url,
        `SELECT (SELECT coalesce(json_agg(to_jsonb(i) ORDER BY i.slot_name), '[]') FROM steep_repl.init_slots i) AS init_slots,
                (SELECT coalesce(json_agg(slot_name ORDER BY slot_name), '[]') FROM pg_replication_slots WHERE database = current_database()) AS slots,
                (SELECT coalesce(json_agg(pubname ORDER BY pubname), '[]') FROM pg_publication) AS publications,
                (SELECT coalesce(json_agg(to_jsonb(p) - 'updated_at' ORDER BY p.node_id), '[]') FROM steep_repl.init_progress p) AS progress,
                (SELECT coalesce(json_agg(to_jsonb(m) - 'updated_at' ORDER BY m.node_id), '[]') FROM steep_repl.init_method_state m) AS method_state,
                (SELECT count(*)::int FROM graphile_worker.jobs WHERE task_identifier NOT IN ('probe_node', 'snapshot_watch')) AS jobs`,
      );
      // heartbeats move last_seen meanwhile
      return { audit_rows, nodes: (nodes as Array<Record<string, unknown>>).map(({ last_seen: _seen, ...row }) => row), ...counts };
    };
    return { source: await side(source), target: await side(target), spare: await side(spare), lone: await side(lone), files: fs.readdirSync(work).sort() };
  }

  describe('bad input: exit 2, a clear message, nothing changed', () => {
    const full = () => {
      const dir = path.join(work, 'full');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'toc.dat'), '');
      return dir;
    };
    const refusals: Array<[string, () => string[], () => string, RegExp]> = [
      ['prepare: no --for', () => ['node', 'prepare', target.id, '--from', source.id], () => target.url, /Missing required flag for/],
      ['prepare: --for pg_dumpall', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dumpall'], () => target.url, /--for/],
      ['prepare: --expires 7x', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--expires', '7x'], () => target.url, /--expires "7x": unknown unit "x"/],
      ['prepare: --expires 30s (below a minute)', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--expires', '30s'], () => target.url, /option expires must be from 60/],
      ['prepare: --jobs 0', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--jobs', '0'], () => target.url, /--jobs|minimum/i],
      ['prepare: --hold soon', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--hold', 'soon'], () => target.url, /--hold "soon" is not a duration/],
      ['prepare: a --dump-dir that holds files', () => ['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', full()], () => target.url, /is not empty/],
      ['prepare: --dump-dir with pg_basebackup', () => ['node', 'prepare', copy.id, '--from', source.id, '--for', 'pg_basebackup', '--dump-dir', work], () => source.url, /--dump-dir is for --for pg_dump only/],
      ['prepare: --jobs with pg_basebackup', () => ['node', 'prepare', copy.id, '--from', source.id, '--for', 'pg_basebackup', '--jobs', '2'], () => source.url, /--jobs is for --for pg_dump only/],
      ['prepare: from itself', () => ['node', 'prepare', target.id, '--from', target.id, '--for', 'pg_dump'], () => target.url, /cannot be initialized from itself/],
      ['prepare: an unknown source', () => ['node', 'prepare', target.id, '--from', 'nobody', '--for', 'pg_dump'], () => target.url, /unknown node .*nobody/],
      ['prepare: an unknown target', () => ['node', 'prepare', 'nobody', '--from', source.id, '--for', 'pg_dump'], () => target.url, /unknown node .*nobody/],
      [
        'prepare: a pg_basebackup target the source does not know',
        () => ['node', 'prepare', 'Kopie unbekannt', '--from', source.id, '--for', 'pg_basebackup'],
        () => source.url,
        /node Kopie unbekannt is not registered in the registry of Quelle "M"[\s\S]*steep-repl node register 'Kopie unbekannt' --host/,
      ],
      [
        'prepare: a target the source does not know',
        () => ['node', 'prepare', lone.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'lone')],
        () => lone.url,
        /node Einsam m is not registered in the registry of Quelle "M"; nothing was prepared\nhint: register it there first: steep-repl node register 'Einsam m' --host 127\.0\.0\.1 --port \d+ --dbname man_cli_lone\w+ --user \w+ --db /,
      ],
      ['complete: a malformed --source-lsn', () => ['node', 'complete', target.id, '--source-lsn', '16-B374D848'], () => target.url, /is not an LSN such as 16\/B374D848/],
      ['complete: a node without a manual init', () => ['node', 'complete', target.id], () => target.url, /has no manual initialization waiting for complete/],
      ['complete: an unknown node', () => ['node', 'complete', 'nobody'], () => target.url, /unknown node .*nobody/],
      ['cancel: an unknown node', () => ['node', 'cancel', 'nobody'], () => source.url, /unknown node .*nobody/],
    ];
    it.each(refusals)('%s', async (_what, args, db, message) => {
      const argv = args();
      const before = await stateOf();
      const result = await runCli([...argv, '--db', db()]);
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(message);
      expect(await stateOf()).toEqual(before);
    });
  });

  describe('pg_dump', () => {
    let prepare: CliRun | undefined;
    let printed: string;
    let dumpDir: string;
    let spareAgent: AgentProcess | undefined;
    afterAll(async () => {
      prepare?.child.kill('SIGKILL');
      await spareAgent?.stop();
    });
    // the spare's manual init goes (its agent cleans up on the source)
    async function cancelSpare(): Promise<void> {
      const cancel = await runCli(['node', 'cancel', spare.id, '--db', spare.url]);
      expect(cancel.code).toBe(0);
    }

    it('prints the facts and the exact next commands, holds the snapshot in the foreground', async () => {
      dumpDir = path.join(work, "dump 'eins' $x");
      prepare = startCli(['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', dumpDir, '--jobs', '3', '--expires', '2d', '--db', target.url]);
      printed = await preparedOutput(prepare);
      const [row] = await query(source.url, 'SELECT lsn::text AS lsn, snapshot_name, backup, expires_at - created_at AS ttl FROM steep_repl.init_slots WHERE slot_name = $1', [slotName]);
      expect(row).toMatchObject({ backup: 'pg_dump', ttl: { days: 2 } });
      expect(printed).toContain(`prepared the init of ${target.id} from ${source.id} for pg_dump: slot ${slotName} at LSN ${row.lsn}, snapshot ${row.snapshot_name}, expires `);

      // read back as the shell reads them
      const [{ own }] = await query(source.url, "SELECT array_agg(nspname::text ORDER BY nspname) AS own FROM pg_namespace WHERE NOT steep_repl.is_user_schema(nspname) AND nspname !~ '^pg_' AND nspname <> 'information_schema'");
      expect(own).toEqual(expect.arrayContaining(['graphile_worker', 'steep_repl']));
      const conninfo = (db: NodeDb) => `host=${db.cluster.host} port=${db.cluster.port} dbname=${db.name} user=${db.cluster.user}`;
      expect(shellWords(printedLine(printed, 'pg_dump'))).toEqual([
        'pg_dump',
        `--snapshot=${row.snapshot_name}`,
        '--format=directory',
        '--jobs=3',
        `--file=${dumpDir}`,
        ...own.map((schema: string) => `--exclude-schema=${schema}`),
        '--no-publications',
        '--no-subscriptions',
        conninfo(source),
      ]);
      expect(shellWords(printedLine(printed, 'pg_restore'))).toEqual(['pg_restore', '--jobs=3', '--exit-on-error', `--dbname=${conninfo(target)}`, dumpDir]);
      expect(shellWords(printedLine(printed, 'steep-repl node complete'))).toEqual(['steep-repl', 'node', 'complete', target.id, '--db', target.url]);
      expect(printed).not.toMatch(/password/i);
      expect(prepare.stderr).toMatch(/holding snapshot \S+ until \S+: keep this running until pg_dump has started/);

      // recorded on both sides; the slot is not active while the snapshot is held
      const [slot] = await query(source.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slotName]);
      expect(slot).toEqual({ active: false });
      const [holder] = await query(source.url, 'SELECT steep_repl.snapshot_holder($1) AS pid', [row.snapshot_name]);
      expect(holder.pid).toEqual(expect.any(Number));
      const [init] = await query(target.url, "SELECT n.init_state, p.method, p.job_id, m.backup, m.slot_name, m.snapshot_name, m.consistent_lsn::text AS lsn FROM steep_repl.nodes n JOIN steep_repl.init_progress p USING (node_id) JOIN steep_repl.init_method_state m USING (node_id) WHERE n.node_id = $1", [target.id]);
      expect(init).toEqual({ init_state: 'preparing', method: 'manual', job_id: null, backup: 'pg_dump', slot_name: slotName, snapshot_name: row.snapshot_name, lsn: row.lsn });
    });

    it('node status and list show the backup, the slot, its LSN, the snapshot held, the WAL retained and the expiry', async () => {
      const [row] = await query(source.url, 'SELECT lsn::text AS lsn, snapshot_name FROM steep_repl.init_slots WHERE slot_name = $1', [slotName]);
      const text = await runCli(['node', 'status', target.id, '--db', target.url]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^init\s+manual \(pg_dump\): waiting for the dump and restore, then node complete$/m);
      expect(text.stdout).toMatch(
        new RegExp(`^manual slot\\s+${slotName} on Quelle "M" at LSN ${row.lsn} \\(manual pg_dump, snapshot ${row.snapshot_name} held \\(pid \\d+\\)\\): retains \\S+ of WAL, expires \\S+$`, 'm'),
      );
      const json = JSON.parse((await runCli(['node', 'status', target.id, '--json', '--db', target.url])).stdout);
      expect(json.manual).toMatchObject({ backup: 'pg_dump', slot_name: slotName, lsn: row.lsn, snapshot_name: row.snapshot_name, source_node_id: source.id });
      expect(json.manual.source).toMatchObject({ slot_exists: true, snapshot_held: true, purpose: 'manual', backup: 'pg_dump' });
      expect(json.manual.source.retained_bytes).toEqual(expect.any(Number));

      const list = await runCli(['node', 'list', '--db', target.url]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^ziel m \*\s+\S+\s+preparing\s+manual pg_dump from Quelle "M"\s/m);
      expect(list.stdout).toContain(`ziel m: manual (pg_dump): waiting for the dump and restore, then node complete; slot ${slotName} on Quelle "M" at LSN ${row.lsn} (manual pg_dump, snapshot ${row.snapshot_name} held`);
      const listed = JSON.parse((await runCli(['node', 'list', '--json', '--db', target.url])).stdout);
      expect(listed.find((n: any) => n.node_id === target.id).manual.source.snapshot_held).toBe(true);

      // the source's own status: the slot it holds for the target
      const onSource = await runCli(['node', 'status', '--db', source.url]);
      expect(onSource.stdout).toMatch(new RegExp(`^prepared slot\\s+${slotName} for ziel m \\(manual pg_dump, snapshot ${row.snapshot_name} held \\(pid \\d+\\)\\): retains \\S+ of WAL, expires `, 'm'));
    });

    it('the live view shows the init waiting for its backup and leaves manual out of the I key, naming node prepare', async () => {
      const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
      const tui = new TmuxSession(
        'man-tui',
        `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(target.url)} --node ${shellQuote(target.id)}; sleep 600`,
        200,
        30,
      );
      try {
        const row = (screen: string, id: string) => screen.split('\n').find((l) => l.slice(1).startsWith(id)) ?? '';
        await tui.waitFor((screen) => /PREPARING.*manual: waiting/.test(row(screen, target.id)), 20000, 'the target waiting for its backup');
        await tui.waitFor(/ziel m: preparing · source Quelle "M" · manual: waiting for (pg_dump|the backup), then node complete/, 10000, 'what it waits for');
        tui.sendKeys('k');
        await tui.waitFor(/^›Quelle "M"/m, 10000, 'the source selected');
        tui.sendKeys('i');
        await tui.waitFor(/from: \[1\] ziel m/, 10000);
        tui.sendKeys('1');
        const screen = await tui.waitFor(/method: .*\(Esc: no\)/, 10000, 'the methods offered');
        expect(screen).toMatch(/method: \[1\] snapshot  \[2\] direct  \(Esc: no\)  · two-phase: no ready snapshot on ziel m · manual: steep-repl node prepare 'Quelle "M"' --from 'ziel m' --for pg_dump/);
        tui.sendKeys('Escape');
      } finally {
        tui.kill();
      }
    });

    it('a second prepare for the same target is refused while the first holds, changing nothing', async () => {
      const before = await stateOf();
      const again = await runCli(['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'zwei'), '--db', target.url]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/already preparing|already queued|already/);
      expect(await stateOf()).toEqual(before);
    });

    it('node complete before the restore: the schema differs (exit 3), only a wrong --source-lsn is a bad argument (exit 2); nothing changed', async () => {
      const before = await stateOf();
      const early = await runCli(['node', 'complete', target.id, '--db', target.url]);
      expect(early.code).toBe(3);
      expect(early.stderr).toMatch(/schema of node ziel m differs from node Quelle "M"[\s\S]*accounts/);
      expect(await stateOf()).toEqual(before);
      const behind = await runCli(['node', 'complete', target.id, '--source-lsn', '0/1', '--db', target.url]);
      expect(behind.code).toBe(2);
      expect(behind.stderr).toMatch(/refused \(nothing was changed\):\n1\) .*past the handover point 0\/1 \(--source-lsn\)/);
      expect(await stateOf()).toEqual(before);
      expect(prepare!.child.exitCode).toBeNull();
    });

    it('Ctrl+C releases the snapshot and keeps the slot for node complete (exit 0)', async () => {
      prepare!.child.kill('SIGINT');
      const ended = await prepare!.result;
      prepare = undefined;
      expect(ended.code).toBe(0);
      expect(ended.stderr).toMatch(/released snapshot \S+ \(SIGINT\): a pg_dump that started before now is unaffected, one started now fails; the slot \S+ stays for node complete until \S+: steep-repl node complete 'ziel m' --db /);
      const [row] = await query(source.url, 'SELECT snapshot_name FROM steep_repl.init_slots WHERE slot_name = $1', [slotName]);
      expect(await query(source.url, 'SELECT steep_repl.snapshot_holder($1) AS pid', [row.snapshot_name])).toEqual([{ pid: null }]);
      expect(await query(source.url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [slotName])).toHaveLength(1);
      const status = await runCli(['node', 'status', target.id, '--db', target.url]);
      expect(status.stdout).toMatch(/^manual slot\s+.*\(manual pg_dump, waiting\): retains \S+ of WAL/m);
    });

    it('Enter, --hold and a holder ended by someone else end the hold, each saying so', async () => {
      spareAgent = await AgentProcess.start(spare.url);
      // a newline on stdin is Enter
      const entered = await runCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'enter'), '--db', spare.url], {}, '\n');
      expect(entered.code).toBe(0);
      expect(entered.stderr).toMatch(/released snapshot \S+ \(Enter\)/);
      await cancelSpare();

      const held = await runCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--hold', '2', '--dump-dir', path.join(work, 'hold'), '--db', spare.url]);
      expect(held.code).toBe(0);
      expect(held.stderr).toMatch(/holding snapshot \S+ until \S+/);
      expect(held.stderr).toMatch(/released snapshot \S+ \(--hold elapsed\)/);
      await cancelSpare();

      const run = startCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'lost'), '--db', spare.url]);
      await preparedOutput(run);
      const [row] = await query(source.url, 'SELECT snapshot_name FROM steep_repl.init_slots WHERE slot_name = $1', [spareSlot]);
      await query(source.url, 'SELECT pg_terminate_backend(steep_repl.snapshot_holder($1))', [row.snapshot_name]);
      const lost = await run.result;
      expect(lost.code).toBe(1);
      expect(lost.stderr).toMatch(/error: the snapshot holder was dropped: terminating connection due to administrator command; a pg_dump that already started is unaffected, one started now fails/);
      expect(lost.stderr).toMatch(/hint: if the dump has not started, cancel \(steep-repl node cancel 'Ersatz m' --db \S+\) and prepare again/);
      await cancelSpare();
    });

    it('Ctrl+C while the slot waits for a running transaction undoes the prepare (exit 4, nothing left)', async () => {
      // the undo is recorded (event slot.cancelled) and takes its expiry job along
      const prepared = async () => {
        const { source: s, ...rest } = (await stateOf()) as { source: Record<string, unknown> };
        const { audit_rows: _audit, jobs: _jobs, ...kept } = s;
        return { source: kept, ...rest };
      };
      const before = await prepared();
      // a transaction with an xid on the source's server: a new slot waits for it to end
      const blocker = await import('pg').then(({ Client }) => new Client({ connectionString: source.cluster.url() }));
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('SELECT pg_current_xact_id()');
        const run = startCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'blocked'), '--db', spare.url]);
        await waitUntil('the slot waiting', async () => (await query(source.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'CREATE_REPLICATION_SLOT%' AND application_name = 'steep-repl prepare'"))[0].n > 0);
        run.child.kill('SIGINT');
        const ended = await run.result;
        expect(ended.code).toBe(4);
        expect(ended.stderr).toMatch(/node prepare interrupted \(SIGINT\): nothing stays prepared/);
      } finally {
        await blocker.end();
      }
      expect(await prepared()).toEqual(before);
    });

    it('node cancel of a held pg_dump prepare drops the slot and ends the hold', async () => {
      const run = startCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--json', '--dump-dir', path.join(work, 'cancel'), '--db', spare.url]);
      await preparedOutput(run);
      const json = JSON.parse(run.stdout);
      expect(json).toMatchObject({ target: spare.id, source: source.id, backup: 'pg_dump', slot_name: spareSlot, jobs: 4, dump_dir: path.join(work, 'cancel') });
      expect(json.commands.pg_dump).toContain(`--snapshot=${json.snapshot_name}`);
      const cancel = await runCli(['node', 'cancel', spare.id, '--db', spare.url]);
      expect(cancel.stderr).toBe('');
      expect(cancel.code).toBe(0);
      const ended = await run.result;
      expect(ended.code).toBe(4);
      expect(ended.stderr).toMatch(/snapshot \S+ released: the prepare of Ersatz m was cancelled or expired/);
      expect(await query(source.url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [spareSlot])).toEqual([]);
      expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [spareSlot])).toEqual([]);
    });
  });

  describe('pg_basebackup', () => {
    it('prints the recovery settings and the complete command for the copy; status shows the prepare on the source', async () => {
      await registerIn(source, copy);
      const result = await runCli(['node', 'prepare', copy.id, '--from', source.id, '--for', 'pg_basebackup', '--expires', '1h', '--db', source.url]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const [row] = await query(source.url, 'SELECT lsn::text AS lsn, timeline, snapshot_name FROM steep_repl.init_slots WHERE slot_name = $1', [copySlot]);
      expect(row).toMatchObject({ timeline: 1, snapshot_name: null });
      const out = result.stdout;
      expect(out).toContain(`prepared the init of Kopie m from Quelle "M" for pg_basebackup: slot ${copySlot} at LSN ${row.lsn} on timeline 1, expires `);
      expect(out).toMatch(/take the base backup first, prepare after/);
      const lines = out.split('\n');
      const settings = lines.filter((l) => /^\s+\w+ = /.test(l)).map((l) => l.trim());
      const [{ n: enabled }] = await query(source.url, 'SELECT count(*)::int AS n FROM pg_subscription WHERE subenabled');
      expect(settings).toEqual([
        `recovery_target_lsn = '${row.lsn}'`,
        'recovery_target_inclusive = off',
        'recovery_target_action = promote',
        "recovery_target_timeline = 'current'",
        ...(enabled > 0 ? ['max_logical_replication_workers = 0'] : []),
        `primary_conninfo = 'host=${source.cluster.host} port=${source.cluster.port} user=${source.cluster.user}'`,
        `restore_command = 'cp /path/to/wal/archive/%f "%p"'`,
      ]);
      expect(out).toContain('standby.signal');
      expect(out).toContain('recovery.signal');
      expect(shellWords(printedLine(out, 'steep-repl node complete'))).toEqual(['steep-repl', 'node', 'complete', copy.id, '--db', copy.url]);
      expect(out).not.toMatch(/password/i);

      // seen from the source's registry: the prepare it holds for the copy
      const status = await runCli(['node', 'status', copy.id, '--db', source.url]);
      expect(status.stdout).toMatch(new RegExp(`^prepared slot\\s+${copySlot} for Kopie m \\(manual pg_basebackup, waiting\\): retains \\S+ of WAL, expires `, 'm'));

      // a second prepare for it is refused, and complete on the source itself (not its copy), changing nothing
      const before = await stateOf();
      const onSource = await runCli(['node', 'complete', copy.id, '--db', source.url]);
      expect(onSource.code).toBe(2);
      expect(onSource.stderr).toContain(`this database is source node Quelle "M", which holds the prepared slot ${copySlot}: node complete runs on the copy restored from its base backup`);
      expect(onSource.stderr).toContain(`hint: give --db of the promoted copy: steep-repl node complete 'Kopie m' --db ${copy.url}`);
      const again = await runCli(['node', 'prepare', copy.id, '--from', source.id, '--for', 'pg_basebackup', '--json', '--db', source.url]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/is prepared for node "Kopie m" already[\s\S]*hint: complete it .* or cancel it/);
      expect(await stateOf()).toEqual(before);
    });

    it('node cancel on the source drops the slot, the publication and the prepare', async () => {
      const cancel = await runCli(['node', 'cancel', copy.id, '--json', '--db', source.url]);
      expect(cancel.code).toBe(0);
      expect(JSON.parse(cancel.stdout)).toMatchObject({ node_id: copy.id, cancelled: true, prepare: { slot_name: copySlot, backup: 'pg_basebackup', publication_dropped: true } });
      expect(await query(source.url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [copySlot])).toEqual([]);
      expect(await query(source.url, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [copySlot])).toEqual([]);
      expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots')).toEqual([{ slot_name: slotName }]);

      // --json from the start: the facts and the settings as data
      const json = await runCli(['node', 'prepare', copy.id, '--from', source.id, '--for', 'pg_basebackup', '--json', '--db', source.url]);
      expect(json.code).toBe(0);
      const prepared = JSON.parse(json.stdout);
      expect(prepared).toMatchObject({ target: copy.id, source: source.id, backup: 'pg_basebackup', slot_name: copySlot, timeline: 1 });
      expect(prepared.recovery_settings.common).toMatchObject({ recovery_target_lsn: `'${prepared.lsn}'`, recovery_target_inclusive: 'off' });
      const text = await runCli(['node', 'cancel', copy.id, '--db', source.url]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`the pg_basebackup prepare for Kopie m was cancelled: slot ${copySlot} dropped, publication ${copySlot} dropped`);
    });
  });

});

