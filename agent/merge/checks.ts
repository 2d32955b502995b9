// Step 1, before anything is written on either node: B is the node the run
// names and has steep_repl; a merge needs PostgreSQL 16 on both (origin =
// none both ways); every table in scope exists on B defined as on A
// (columns by name and type, the same primary key, the same generated
// columns), a last-modified column is a timestamp or a date on B too, and
// with no scope given B has no user table A lacks. A failing check ends the
// run failed, kind refused or schema, the nodes untouched.
import { Client } from 'pg';
import { isNotInstalled } from '../../lib/errors';
import { quoteIdent } from '../../lib/identifiers';
import { localNodeId } from '../../lib/sql/localNodeId';
import type { ClaimedMerge } from '../../lib/sql/claimMerge';
import { LabelledTable, sameTable } from '../../lib/sql/queryable';
import { serverVersionNum } from '../../lib/sql/serverVersionNum';
import { TableSql } from '../verify/table-sql';
import { keyOrder, readTableShape, shapeDifferences, TableShape } from '../verify/table-shape';
import { MergeError } from './errors';
import { ExchangeSql, writableColumns } from './exchange-sql';
import { foreignKeys, ForeignKey, parentsFirst } from './foreign-keys';
import { PeerSession } from './sessions';

export interface PlannedTable {
  table: LabelledTable;
  // A's shape: the reference for the SQL text (B's was checked to match)
  shape: TableShape;
  sql: TableSql;
  ex: ExchangeSql;
  note?: string;
}

export interface Plan {
  // in scope order (as recorded), and in foreign-key order for the exchange
  tables: PlannedTable[];
  writeOrder: PlannedTable[];
  foreignKeys: ForeignKey[];
}

const schemaHint = 'steep-repl schema compare shows how the two nodes differ; make them alike, then merge again';
const timeTypes = ['timestamp with time zone', 'timestamp without time zone', 'date'];

// B's database holds steep_repl and is node B's own.
export async function checkPeer(b: Client, nodeB: string): Promise<void> {
  let local: string | null;
  try {
    local = await localNodeId(b);
  } catch (err) {
    if (!isNotInstalled(err)) throw err;
    throw new MergeError(
      `steep_repl is not installed in the database of node ${quoteIdent(nodeB)}`,
      'refused',
      `run steep-repl install there, register it as the local node ${quoteIdent(nodeB)}, then merge again`,
    );
  }
  if (local !== nodeB) {
    throw new MergeError(
      `the database registered as node ${quoteIdent(nodeB)} is ${local ? `node ${quoteIdent(local)}` : 'not registered as a local node'}`,
      'refused',
      'check node B\'s address in this registry (steep-repl node list) and the local node registered in its database',
    );
  }
}

export async function checkTables(run: ClaimedMerge, a: Client, b: PeerSession): Promise<Plan> {
  const nameA = `node ${quoteIdent(run.node_a)}`;
  const nameB = `node ${quoteIdent(run.node_b)}`;
  const [versionA, versionB] = [await serverVersionNum(a), await b.run(serverVersionNum)];
  if (run.mode === 'merge') {
    const old = [[nameA, versionA], [nameB, versionB]].filter(([, v]) => Number(v) < 160000);
    if (old.length) {
      throw new MergeError(
        `a merge replicates both ways with origin = none, which needs PostgreSQL 16 or later: ` +
          old.map(([n, v]) => `${n} runs ${Math.floor(Number(v) / 10000)}`).join(', '),
        'refused',
        'upgrade the server first; --analyze and --dry-run work on older servers',
      );
    }
  }
  const column = run.strategy === 'last-modified' ? run.options.column : undefined;
  const tables: PlannedTable[] = [];
  for (const table of run.tables) {
    const [shapeA, shapeB] = [await readTableShape(a, table, versionA), await b.run((c) => readTableShape(c, table, versionB))];
    if (!shapeA || !shapeB) {
      throw new MergeError(`table ${table.label} does not exist on ${shapeA ? nameB : nameA}`, 'schema', schemaHint);
    }
    const differences = shapeDifferences(shapeA, shapeB, nameA, nameB);
    const [writableA, writableB] = [await writableColumns(a, shapeA), await b.run((c) => writableColumns(c, shapeB))];
    for (const c of writableA.filter((n) => !writableB.includes(n))) differences.push(`column ${JSON.stringify(c)} is generated on ${nameB} only`);
    for (const c of writableB.filter((n) => !writableA.includes(n))) differences.push(`column ${JSON.stringify(c)} is generated on ${nameA} only`);
    if (differences.length) {
      throw new MergeError(`table ${table.label} is defined differently on the two nodes: ${differences.join('; ')}`, 'schema', schemaHint);
    }
    if (shapeA.keyKind !== 'primary key') {
      throw new MergeError(
        `table ${table.label} has no primary key: a merge matches rows by primary key`,
        'refused',
        'add a primary key on both nodes, or leave the table out with --tables',
      );
    }
    if (column) {
      const type = shapeB.columns.find((c) => c.name === column)?.type;
      // format_type writes a precision inside: timestamp(3) with time zone
      if (!type || !timeTypes.includes(type.replace(/\(\d+\)/, ''))) {
        throw new MergeError(
          `the last-modified column ${JSON.stringify(column)} of ${table.label} is ${type ? `${type} on ${nameB}` : `missing on ${nameB}`}: ` +
            'it must be timestamptz, timestamp or date on both nodes',
          type ? 'refused' : 'schema',
          'name a column both nodes set when they change a row (--column)',
        );
      }
    }
    const order = keyOrder(shapeA, shapeB);
    const sql = new TableSql(shapeA, order.collateC);
    tables.push({ table, shape: shapeA, sql, ex: new ExchangeSql(shapeA, sql, writableA), note: order.note });
  }
  if (!run.scope.tables && !run.scope.schema) {
    // read as they are (listReplicatedTables would ANALYZE B's unanalyzed tables)
    const onB: LabelledTable[] = await b.run(async (c) => (await c.query('SELECT schema_name, table_name, label FROM steep_repl.replicated_tables()')).rows);
    const extra = onB.filter((t) => !run.tables.some((s) => sameTable(s, t)));
    if (extra.length) {
      throw new MergeError(
        `${nameB} has tables ${nameA} lacks: ${extra.slice(0, 10).map((t) => t.label).join(', ')}${extra.length > 10 ? ` and ${extra.length - 10} more` : ''}`,
        'schema',
        `create them on ${nameA} first, or merge some tables only (--tables / --schema)`,
      );
    }
  }
  const keys = await foreignKeys(a, run.tables);
  return { tables, writeOrder: parentsFirst(tables.map((t) => ({ ...t.table, planned: t })), keys).map((t) => t.planned), foreignKeys: keys };
}
