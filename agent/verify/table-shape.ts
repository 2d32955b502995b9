// A table as a verify needs to know it, read from one server's catalog (no
// steep_repl function, so any PostgreSQL 14+ answers the same way): its
// columns with how each is hashed, its key (the primary key, else the
// replica identity index; none: compared whole) and what each text key
// column is ordered by.
import { Client } from 'pg';
import { tableLabel } from '../../lib/identifiers';
import { TableName } from '../../lib/sql/queryable';

export interface ShapeColumn {
  name: string;
  // format_type: 'numeric(12,2)', 'character varying(10)', 'public.mood'
  type: string;
  // value: hash_record_extended hashes it as it is; text: its type has no
  // hash function of its own, or one that hashes server-local ids (enums,
  // reg* types); numeric: money, whose text depends on lc_monetary
  hashAs: 'value' | 'text' | 'numeric';
  // a numeric (or a domain over one): its key text goes through trim_scale
  numeric: boolean;
  // position in the key (0, 1, …), null when not a key column
  keyPosition: number | null;
  // how this server orders the column: null when the type has no collation
  collation: string | null;
  deterministic: boolean;
}

export interface TableShape extends TableName {
  label: string;
  partitioned: boolean;
  columns: ShapeColumn[];
  // key columns in key order; empty: no primary key or replica identity index
  key: ShapeColumn[];
  keyKind: 'primary key' | 'replica identity index' | null;
  // pg_class.reltuples (of the leaves, for a partitioned table); null when never analyzed
  rowsEstimate: number | null;
  // pg_class.relpages, likewise
  pages: number;
}

const regTypes = [
  'regproc', 'regprocedure', 'regoper', 'regoperator', 'regclass', 'regtype', 'regrole', 'regnamespace',
  'regconfig', 'regdictionary', 'regcollation',
];

// walk: every type a column's value is made of (domain bases, array
// elements, range subtypes, composite fields), to find one that cannot be
// hashed as a value; base: the column type under its domains.
const shapeSql = `
  WITH RECURSIVE rel AS (
    SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
  ), ident AS (
    SELECT i.indkey::int2[] AS indkey, CASE WHEN i.indisprimary THEN 'primary key' ELSE 'replica identity index' END AS kind
    FROM pg_catalog.pg_index i JOIN rel ON i.indrelid = rel.oid
    WHERE i.indisprimary OR i.indisreplident ORDER BY i.indisprimary DESC LIMIT 1
  ), cols AS (
    SELECT a.attnum, a.attname::text AS name, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attcollation,
           pg_catalog.array_position((SELECT indkey FROM ident), a.attnum) AS key_position
    FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid
    WHERE a.attnum > 0 AND NOT a.attisdropped
  ), walk(root, t) AS (
    SELECT DISTINCT atttypid, atttypid FROM cols
    UNION
    SELECT w.root, x.t FROM walk w JOIN pg_catalog.pg_type ty ON ty.oid = w.t
    CROSS JOIN LATERAL (
      SELECT ty.typbasetype WHERE ty.typtype = 'd'
      UNION ALL SELECT ty.typelem WHERE ty.typlen = -1 AND ty.typelem <> 0
      UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
      UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid
      UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                 WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    ) x(t)
  ), base(root, t) AS (
    SELECT DISTINCT atttypid, atttypid FROM cols
    UNION
    SELECT b.root, ty.typbasetype FROM base b JOIN pg_catalog.pg_type ty ON ty.oid = b.t WHERE ty.typtype = 'd'
  ), verdict AS (
    SELECT w.root,
           bool_or(ty.typtype = 'e'
                   OR (ty.typnamespace = 'pg_catalog'::regnamespace AND ty.typname::text = ANY ($3::text[]))
                   OR (ty.typtype = 'b' AND NOT (ty.typlen = -1 AND ty.typelem <> 0) AND NOT EXISTS (
                         -- the default hash operator class PostgreSQL picks (GetDefaultOpClass): one for the
                         -- type itself, else the only one of a type it is binary-coercible to, or of the
                         -- preferred type of its category; with the extended hash function
                         SELECT 1 FROM pg_catalog.pg_opclass oc
                         JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname = 'hash'
                         JOIN pg_catalog.pg_type it ON it.oid = oc.opcintype
                         WHERE oc.opcdefault
                           AND EXISTS (SELECT 1 FROM pg_catalog.pg_amproc p WHERE p.amprocfamily = oc.opcfamily AND p.amprocnum = 2
                                         AND p.amproclefttype = oc.opcintype)
                           AND (oc.opcintype = ty.oid OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast ca
                                                                 WHERE ca.castsource = ty.oid AND ca.casttarget = oc.opcintype
                                                                   AND ca.castmethod = 'b'))
                         HAVING bool_or(oc.opcintype = ty.oid) OR count(*) = 1
                             OR count(*) FILTER (WHERE it.typispreferred AND it.typcategory = ty.typcategory) = 1))) AS as_text
    FROM walk w JOIN pg_catalog.pg_type ty ON ty.oid = w.t GROUP BY w.root
  )
  SELECT c.name, c.type, c.key_position,
         CASE WHEN bt.typname = 'money' AND bt.typnamespace = 'pg_catalog'::regnamespace THEN 'numeric'
              WHEN v.as_text THEN 'text' ELSE 'value' END AS hash_as,
         bt.typname = 'numeric' AND bt.typnamespace = 'pg_catalog'::regnamespace AS numeric,
         CASE WHEN c.attcollation = 0 THEN NULL
              WHEN c.attcollation = 100 THEN (SELECT pg_catalog.to_jsonb(d) || jsonb_build_object('version', pg_catalog.pg_database_collation_actual_version(d.oid))
                                              FROM pg_catalog.pg_database d WHERE d.datname = current_database())
              ELSE (SELECT pg_catalog.to_jsonb(co) || jsonb_build_object('version', pg_catalog.pg_collation_actual_version(co.oid))
                    FROM pg_catalog.pg_collation co WHERE co.oid = c.attcollation) END AS collation,
         (SELECT kind FROM ident) AS key_kind,
         (SELECT relkind = 'p' FROM rel) AS partitioned,
         l.rows_estimate, l.pages
  FROM cols c
  CROSS JOIN (SELECT CASE WHEN bool_or(lc.reltuples < 0) THEN NULL ELSE sum(lc.reltuples) END::float8 AS rows_estimate,
                     coalesce(sum(lc.relpages), 0)::float8 AS pages
              FROM rel JOIN LATERAL (SELECT rel.oid AS relid WHERE rel.relkind = 'r'
                                     UNION ALL SELECT pt.relid FROM pg_catalog.pg_partition_tree(rel.oid) pt WHERE rel.relkind = 'p' AND pt.isleaf) lv ON true
              JOIN pg_catalog.pg_class lc ON lc.oid = lv.relid) l
  JOIN verdict v ON v.root = c.atttypid
  JOIN base b ON b.root = c.atttypid JOIN pg_catalog.pg_type bt ON bt.oid = b.t AND bt.typtype <> 'd'
  ORDER BY c.attnum`;

// PostgreSQL 14 has no pg_database_collation_actual_version.
const shapeSql14 = shapeSql.replace('pg_catalog.pg_database_collation_actual_version(d.oid)', 'NULL::text');

type CollationRow = Record<string, unknown>;

// What decides the order of a collatable column, as one text: the same
// text on two servers means they sort its values the same way.
function collationText(row: CollationRow): string {
  const pick = (...keys: string[]) => keys.map((k) => row[k]).find((v) => v !== undefined && v !== null) ?? '';
  if ('datname' in row) {
    return ['database', pick('datlocprovider'), pick('datcollate'), pick('datctype'), pick('datlocale', 'daticulocale'), pick('daticurules'), pick('version')].join('|');
  }
  return [pick('collprovider'), pick('collcollate'), pick('collctype'), pick('colllocale', 'colliculocale'), pick('collicurules'), pick('version')].join('|');
}

// undefined when the table is not there.
export async function readTableShape(client: Client, table: TableName, serverVersion: number): Promise<TableShape | undefined> {
  const { rows } = await client.query(serverVersion >= 150000 ? shapeSql : shapeSql14, [table.schema_name, table.table_name, regTypes]);
  if (!rows.length) return undefined;
  const columns: ShapeColumn[] = rows.map((r) => ({
    name: r.name,
    type: r.type,
    hashAs: r.hash_as,
    numeric: r.numeric,
    keyPosition: r.key_position,
    collation: r.collation ? collationText(r.collation) : null,
    deterministic: r.collation ? r.collation.collisdeterministic !== false : true,
  }));
  const key = columns.filter((c) => c.keyPosition !== null).sort((a, b) => a.keyPosition! - b.keyPosition!);
  return {
    schema_name: table.schema_name,
    table_name: table.table_name,
    label: tableLabel(table),
    partitioned: rows[0].partitioned,
    columns,
    key,
    keyKind: rows[0].key_kind,
    rowsEstimate: rows[0].rows_estimate === null ? null : Number(rows[0].rows_estimate),
    pages: Number(rows[0].pages),
  };
}

// Why the two cannot be compared row by row, in words; empty when they can.
// Columns are matched by name (their order may differ).
export function shapeDifferences(reference: TableShape, other: TableShape, referenceName: string, otherName: string): string[] {
  const out: string[] = [];
  const theirs = new Map(other.columns.map((c) => [c.name, c]));
  const ours = new Map(reference.columns.map((c) => [c.name, c]));
  for (const c of reference.columns) {
    const o = theirs.get(c.name);
    if (!o) out.push(`column ${JSON.stringify(c.name)} is missing on ${otherName}`);
    else if (o.type !== c.type) out.push(`column ${JSON.stringify(c.name)} is ${c.type} on ${referenceName} and ${o.type} on ${otherName}`);
  }
  for (const o of other.columns) if (!ours.has(o.name)) out.push(`column ${JSON.stringify(o.name)} is only on ${otherName}`);
  const keyText = (s: TableShape) => (s.key.length ? `${s.keyKind} (${s.key.map((c) => JSON.stringify(c.name)).join(', ')})` : 'no primary key');
  if (keyText(reference) !== keyText(other)) out.push(`the key is ${keyText(reference)} on ${referenceName} and ${keyText(other)} on ${otherName}`);
  return out;
}

// Text key columns are ordered by their own collation where both sides
// have the same deterministic one (the index serves the ranges), else by
// COLLATE "C" on both: ranges must hold the same rows on each side.
export function keyOrder(reference: TableShape, other: TableShape): { collateC: Set<string>; note?: string } {
  const theirs = new Map(other.columns.map((c) => [c.name, c]));
  const collateC = new Set<string>();
  for (const c of reference.key) {
    const o = theirs.get(c.name);
    if (c.collation === null) continue;
    if (!o || o.collation !== c.collation || !c.deterministic || !o.deterministic) collateC.add(c.name);
  }
  if (!collateC.size) return { collateC };
  return {
    collateC,
    note: `key column(s) ${[...collateC].map((n) => JSON.stringify(n)).join(', ')} ordered by COLLATE "C": their collations differ between the nodes or are not deterministic`,
  };
}
