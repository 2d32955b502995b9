// What the roles of an init must be allowed, checked before anything is
// created, so a missing privilege is named with the role and the statement
// that grants it instead of surfacing as PostgreSQL's error halfway through.
// Source (the registry's user, which the agent and the target's server
// connect as): the publication needs CREATE on the database and ownership
// of each published table; the slot needs the REPLICATION attribute; the
// copy needs SELECT on the tables and their sequences. Target (the agent's
// role): a subscription needs superuser, or from PostgreSQL 16 membership
// in pg_create_subscription plus CREATE on the database.
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
}): Promise<void> {
  const missing = [
    ...(await sourceGaps(options.source, options.tables, options.publication)),
    ...(await targetGaps(options.target)),
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
