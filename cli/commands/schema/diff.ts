import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { quoteIdent, tableLabel } from '../../../lib/identifiers';
import { compareFingerprints, fingerprintSet } from '../../../lib/schema-sync';
import { shellWord } from '../../../lib/format';
import { table } from '../../render';
import { resolveNodes, withNodes } from '../../schema-nodes';

// A column object carries only the keys that apply.
interface ColumnFacts {
  name: string;
  type: string;
  not_null: boolean;
  default?: string;
  identity?: string;
  generated?: string;
  generated_kind?: string;
  collation?: string;
}

interface TableEntry {
  schema_name: string;
  table_name: string;
  columns: ColumnFacts[];
  table_facts: { primary_key: string[] | null; replica_identity: string; replica_identity_columns: string[] | null };
  definition?: { partition_of?: string | null; partition_root?: string | null };
}

// schema.table the way SQL reads it: unquoted parts fold A-Z to lower case
// (only ASCII, as PostgreSQL does in UTF8: Ünit stays Ünit), double-quoted
// parts are taken as written ("" is a quote); no schema means public.
export function parseTableName(text: string): { schema_name: string; table_name: string } {
  const invalid = () =>
    new SteepError(`${JSON.stringify(text)} is not a table name: use schema.table, quoting odd names like '"My Schema"."My Table"'`, ExitCode.badArguments);
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      for (i++; i < text.length; i++) {
        if (text[i] === '"' && text[i + 1] === '"') (part += '"'), i++;
        else if (text[i] === '"') break;
        else part += text[i];
      }
      if (text[i++] !== '"') throw invalid();
    } else {
      const start = i;
      while (i < text.length && text[i] !== '.' && text[i] !== '"') i++;
      part = text.slice(start, i).replace(/[A-Z]+/g, (ascii) => ascii.toLowerCase());
      if (/\s/.test(part)) throw invalid();
    }
    if (part === '') throw invalid();
    parts.push(part);
    if (i === text.length) break;
    if (text[i++] !== '.') throw invalid();
  }
  if (parts.length > 2) throw invalid();
  return parts.length === 1 ? { schema_name: 'public', table_name: parts[0] } : { schema_name: parts[0], table_name: parts[1] };
}

function describeColumn(c: ColumnFacts | undefined): string {
  if (!c) return '(missing)';
  return [
    c.type,
    c.collation ? `COLLATE ${c.collation}` : '',
    c.generated ? `GENERATED ALWAYS AS (${c.generated}) ${(c.generated_kind ?? 'stored').toUpperCase()}` : '',
    c.identity ? `GENERATED ${c.identity.toUpperCase()} AS IDENTITY` : '',
    c.default ? `DEFAULT ${c.default}` : '',
    c.not_null ? 'NOT NULL' : '',
  ]
    .filter(Boolean)
    .join(' ');
}


export default class SchemaDiff extends BaseCommand<typeof SchemaDiff> {
  static description = 'Show one table of two nodes side by side, column by column. Exit code 0 when it matches, 3 when it differs.';
  static examples = ['<%= config.bin %> schema diff node_a node_b public.orders', `<%= config.bin %> schema diff node_a node_b '"Sales"."Order Lines"'`];
  static args = {
    'node-a': Args.string({ description: 'reference node (source)', required: true }),
    'node-b': Args.string({ description: 'compared node (target)', required: true }),
    table: Args.string({ description: 'schema.table (SQL quoting for odd names; default schema public)', required: true }),
  };
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SchemaDiff);
    const [a, b] = [args['node-a'], args['node-b']];
    const wanted = parseTableName(args.table);
    const label = tableLabel(wanted);
    const { entryA, entryB, row } = await this.withClient(flags.db, async (registry) => {
      const nodes = await resolveNodes(registry, [a, b]);
      return withNodes(nodes, 'steep-repl schema diff', async ([clientA, clientB]) => {
        const find = (set: unknown[]) =>
          (set as TableEntry[]).find((t) => t.schema_name === wanted.schema_name && t.table_name === wanted.table_name);
        const setA = await fingerprintSet(clientA, [wanted.schema_name], false);
        const entryA = find(setA);
        const entryB = find(await fingerprintSet(clientB, [wanted.schema_name], false));
        if (!entryA && !entryB) {
          throw new SteepError(`table ${label} exists on neither node ${a} nor node ${b}`, ExitCode.badArguments, 'list the tables with: steep-repl schema compare <node-a> <node-b>');
        }
        const partition = [entryA, entryB].find((e) => e?.definition?.partition_of);
        if (partition) {
          const root = partition.definition!.partition_root ?? partition.definition!.partition_of!;
          throw new SteepError(
            `table ${label} is a partition of ${root}: a partitioned table is compared and replicated through its root, and each node may partition it its own way`,
            ExitCode.badArguments,
            `compare the root: steep-repl schema diff ${[a, b, root].map(shellWord).join(' ')}`,
          );
        }
        const rows = await compareFingerprints(clientB, entryA ? [entryA] : [], [wanted.schema_name]);
        return { entryA, entryB, row: rows.find((r) => r.table_name === wanted.table_name)! };
      });
    });
    if (row.status !== 'MATCH') process.exitCode = ExitCode.schemaMismatch;
    if (flags.json) {
      return this.printJson({ table: label, status: row.status, differences: row.differences, [a]: entryA ?? null, [b]: entryB ?? null });
    }
    const keyList = (names: string[] | null | undefined) => (names ? `(${names.map(quoteIdent).join(', ')})` : 'none');
    const columnsA = entryA?.columns ?? [];
    const columnsB = entryB?.columns ?? [];
    const names = [...columnsA.map((c) => c.name), ...columnsB.map((c) => c.name).filter((n) => !columnsA.some((c) => c.name === n))];
    const kindsOf = (column: string) =>
      row.differences
        .filter((d) => d.column === column)
        .map((d) => d.kind.replace(/^column_/, ''))
        .join(', ');
    const lines = names.map((name) => {
      const [ca, cb] = [columnsA.find((c) => c.name === name), columnsB.find((c) => c.name === name)];
      const onlyOn = !entryA ? `only on ${b}` : !entryB ? `only on ${a}` : '';
      return [quoteIdent(name), entryA ? describeColumn(ca) : '(no table)', entryB ? describeColumn(cb) : '(no table)', kindsOf(name) || (ca && cb ? '=' : onlyOn)];
    });
    const facts = (e: TableEntry | undefined, f: (e: TableEntry) => string) => (e ? f(e) : '(no table)');
    lines.push(['primary key', facts(entryA, (e) => keyList(e.table_facts.primary_key)), facts(entryB, (e) => keyList(e.table_facts.primary_key)), '']);
    const identity = (e: TableEntry) =>
      e.table_facts.replica_identity + (e.table_facts.replica_identity === 'index' ? ` ${keyList(e.table_facts.replica_identity_columns)}` : '');
    lines.push(['replica identity', facts(entryA, identity), facts(entryB, identity), '']);
    this.log(`${label}: ${row.status}`);
    this.log(table(['COLUMN', a, b, 'DIFFERENCE'], lines).trimEnd());
    for (const d of row.differences) this.log(`- ${d.detail}`);
  }
}
