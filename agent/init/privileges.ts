// What the roles of an init must be allowed, checked before anything is
// created, so a missing privilege is named with the role and the statement
// that grants it instead of surfacing as PostgreSQL's error halfway through.
// Source (the registry's user, which the agent and the target's server
// connect as): the publication needs CREATE on the database and ownership
// of each published table; the slot needs the REPLICATION attribute; the
// copy needs SELECT on the tables and their sequences. Target (the agent's
// role): a subscription needs superuser, or from PostgreSQL 16 membership
// in pg_create_subscription plus CREATE on the database; a method whose
// agent writes the rows itself (direct) also needs what an apply worker
// has: SET of session_replication_role, the replication-origin functions,
// and INSERT, DELETE and TRUNCATE on the tables. A method that starts the
// subscription at a given LSN (manual) sets its origin's position: EXECUTE
// on pg_replication_origin_advance and pg_replication_origin_progress.
// Superusers pass every check, as PostgreSQL lets them.
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { TableName } from '../../lib/sql/queryable';
import { ident } from '../replication/quoting';

export interface MissingPrivilege {
  side: 'source' | 'target';
  role: string;
  privilege: string;
  grant: string;
}

export async function checkInitPrivileges(options: {
  source: Client;
  target: Client;
  sourceNodeId: string;
  targetNodeId: string;
  tables: TableName[];
  // the pair's publication: an existing one needs no CREATE again
  publication: string;
  agentCopies?: boolean;
  advancesOrigin?: boolean;
  // what the agent's writes need on each table (default: a copy's)
  tablePrivileges?: string[];
}): Promise<void> {
  const missing = [
    ...(await sourceGaps(options.source, options.tables, options.publication)),
    ...(await targetGaps(options.target)),
    ...(options.agentCopies ? await copyGaps(options.target, options.tables, options.tablePrivileges) : []),
    ...(options.advancesOrigin ? await originGaps(options.target) : []),
  ];
  if (!missing.length) return;
  const where = (m: MissingPrivilege) => (m.side === 'source' ? `source node ${options.sourceNodeId}` : `target node ${options.targetNodeId}`);
  throw new SteepError(
    `missing privileges, nothing was created: ${missing.map((m) => `role ${m.role} on ${where(m)} lacks ${m.privilege}`).join('; ')}`,
    undefined,
    `grant them (as a superuser or the owner) and start again: ${missing.map((m) => `on ${where(m)}: ${m.grant}`).join(' ')}`,
  );
}

async function sourceGaps(source: Client, tables: TableName[], publication: string): Promise<MissingPrivilege[]> {
  const { rows } = await source.query(
    `WITH me AS (SELECT current_user AS role, r.rolsuper AS super, r.rolreplication AS replication
                   FROM pg_roles r WHERE r.rolname = current_user),
          planned AS (SELECT c.oid, c.relowner, format('%I.%I', n.nspname, c.relname) AS label
                        FROM unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
                        JOIN pg_namespace n ON n.nspname = t.schema_name
                        JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name)
     SELECT me.role, me.super, me.replication,
            current_database() AS dbname,
            has_database_privilege(current_database(), 'CREATE') AS can_create,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $3) AS publication_exists,
            (SELECT coalesce(json_agg(json_build_object('label', p.label, 'owner', pg_get_userbyid(p.relowner)) ORDER BY p.label), '[]')
               FROM planned p WHERE NOT pg_has_role(p.relowner, 'USAGE')) AS not_owned,
            (SELECT coalesce(json_agg(p.label ORDER BY p.label), '[]')
               FROM planned p WHERE NOT has_table_privilege(p.oid, 'SELECT')) AS not_readable
       FROM me`,
    [tables.map((t) => t.schema_name), tables.map((t) => t.table_name), publication],
  );
  const s = rows[0];
  if (s.super) return [];
  const role = ident(s.role);
  const gaps: MissingPrivilege[] = [];
  if (!s.publication_exists && !s.can_create) {
    gaps.push({ side: 'source', role, privilege: `CREATE on database ${ident(s.dbname)} (to create the publication)`, grant: `GRANT CREATE ON DATABASE ${ident(s.dbname)} TO ${role};` });
  }
  if (!s.publication_exists && s.not_owned.length) {
    const owners = [...new Set<string>(s.not_owned.map((t: { owner: string }) => t.owner))];
    gaps.push({
      side: 'source',
      role,
      privilege: `ownership of ${s.not_owned.map((t: { label: string }) => t.label).join(', ')} (to publish them)`,
      grant: `${owners.map((o) => `GRANT ${ident(o)} TO ${role};`).join(' ')} (or ALTER TABLE ... OWNER TO ${role})`,
    });
  }
  if (!s.replication) {
    gaps.push({ side: 'source', role, privilege: 'the REPLICATION attribute (to create and stream from the slot)', grant: `ALTER ROLE ${role} REPLICATION;` });
  }
  if (s.not_readable.length) {
    gaps.push({
      side: 'source',
      role,
      privilege: `SELECT on ${s.not_readable.join(', ')} (to copy them)`,
      grant: `GRANT SELECT ON ${s.not_readable.join(', ')} TO ${role};`,
    });
  }
  return gaps;
}

async function targetGaps(target: Client): Promise<MissingPrivilege[]> {
  const { rows } = await target.query(
    `SELECT current_user AS role, current_database() AS dbname, current_setting('server_version_num')::int AS version,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super,
            has_database_privilege(current_database(), 'CREATE') AS can_create,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_create_subscription')
              AND pg_has_role('pg_create_subscription', 'USAGE') AS can_subscribe`,
  );
  const t = rows[0];
  if (t.super) return [];
  const role = ident(t.role);
  if (t.version < 160000) {
    return [{ side: 'target', role, privilege: 'superuser (PostgreSQL 15 lets only superusers create subscriptions)', grant: `ALTER ROLE ${role} SUPERUSER;` }];
  }
  const gaps: MissingPrivilege[] = [];
  if (!t.can_subscribe) {
    gaps.push({ side: 'target', role, privilege: 'membership in pg_create_subscription (to create the subscription)', grant: `GRANT pg_create_subscription TO ${role};` });
  }
  if (!t.can_create) {
    gaps.push({ side: 'target', role, privilege: `CREATE on database ${ident(t.dbname)} (to create the subscription)`, grant: `GRANT CREATE ON DATABASE ${ident(t.dbname)} TO ${role};` });
  }
  return gaps;
}

// What the agent's own copy sessions do on the target (agent/copy/workers.ts).
async function copyGaps(target: Client, tables: TableName[], privileges = ['INSERT', 'DELETE', 'TRUNCATE']): Promise<MissingPrivilege[]> {
  const { rows } = await target.query(
    `SELECT current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super,
            has_parameter_privilege('session_replication_role', 'SET') AS can_set_role,
            (SELECT coalesce(json_agg(f ORDER BY f), '[]') FROM unnest(ARRAY['pg_replication_origin_create(text)',
                                                                 'pg_replication_origin_session_setup(text)',
                                                                 'pg_replication_origin_session_reset()']) f
              WHERE NOT has_function_privilege(f, 'EXECUTE')) AS functions,
            (SELECT coalesce(json_agg(DISTINCT quote_ident(n.nspname)), '[]')
               FROM unnest($1::text[]) AS t(schema_name) JOIN pg_namespace n ON n.nspname = t.schema_name
              WHERE NOT has_schema_privilege(n.oid, 'USAGE')) AS schemas,
            (SELECT coalesce(json_agg(format('%I.%I', n.nspname, c.relname) ORDER BY 1), '[]')
               FROM unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
               JOIN pg_namespace n ON n.nspname = t.schema_name
               JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
              WHERE NOT (SELECT bool_and(has_table_privilege(c.oid, p)) FROM unnest($3::text[]) p)) AS tables`,
    [tables.map((t) => t.schema_name), tables.map((t) => t.table_name), privileges],
  );
  const t = rows[0];
  if (t.super) return [];
  const role = ident(t.role);
  const gaps: MissingPrivilege[] = [];
  if (!t.can_set_role) {
    gaps.push({
      side: 'target',
      role,
      privilege: 'SET on session_replication_role (the copy writes as an apply worker does)',
      grant: `GRANT SET ON PARAMETER session_replication_role TO ${role};`,
    });
  }
  if (t.functions.length) {
    gaps.push({
      side: 'target',
      role,
      privilege: `EXECUTE on ${t.functions.join(', ')} (the copy writes under a replication origin)`,
      grant: t.functions.map((f: string) => `GRANT EXECUTE ON FUNCTION ${f} TO ${role};`).join(' '),
    });
  }
  if (t.schemas.length) {
    gaps.push({
      side: 'target',
      role,
      privilege: `USAGE on schema ${t.schemas.join(', ')} (to copy into its tables)`,
      grant: `GRANT USAGE ON SCHEMA ${t.schemas.join(', ')} TO ${role};`,
    });
  }
  if (t.tables.length) {
    gaps.push({
      side: 'target',
      role,
      privilege: `${privileges.join(', ')} on ${t.tables.join(', ')} (to write into them)`,
      grant: `GRANT ${privileges.join(', ')} ON ${t.tables.join(', ')} TO ${role};`,
    });
  }
  return gaps;
}

// Setting where a subscription starts (manual: its origin advanced to the
// handover point before it is enabled).
async function originGaps(target: Client): Promise<MissingPrivilege[]> {
  const { rows } = await target.query(
    `SELECT current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super,
            (SELECT coalesce(json_agg(f ORDER BY f), '[]')
               FROM unnest(ARRAY['pg_replication_origin_advance(text,pg_lsn)', 'pg_replication_origin_progress(text,boolean)']) f
              WHERE NOT has_function_privilege(f, 'EXECUTE')) AS functions`,
  );
  const t = rows[0];
  if (t.super || !t.functions.length) return [];
  const role = ident(t.role);
  return [
    {
      side: 'target',
      role,
      privilege: `EXECUTE on ${t.functions.join(', ')} (the subscription starts at the handover point: its origin is set there)`,
      grant: t.functions.map((f: string) => `GRANT EXECUTE ON FUNCTION ${f} TO ${role};`).join(' '),
    },
  ];
}
