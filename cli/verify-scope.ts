// What node verify and node reinit act on, from their flags, checked before
// anything is connected to or changed: --tables (comma separated, each name
// as psql takes it, quoted parts allowed), --schema, and for reinit --full.
// The names go to SQL as typed, in a JSON array: start_verify and
// start_reinit parse each with parse_ident and say which one is unknown.
import { Flags } from '@oclif/core';
import { ExitCode, SteepError } from '../lib/errors';
import type { ReinitScope } from '../lib/sql/startReinit';

export const scopeFlags = {
  tables: Flags.string({
    description:
      'comma-separated tables, each schema.table or a table name the node receives only once; quote a name as in SQL: \'public."My ""T""able",sales.orders\'',
  }),
  schema: Flags.string({ description: 'every table of this schema that the node receives' }),
};

// Splits at the commas outside double quotes; "" inside quotes is a quote.
// Spaces around a name are dropped; an empty name or an open quote is refused.
export function parseTableList(value: string): string[] {
  const names: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '"') {
      if (quoted && value[i + 1] === '"') {
        current += '""';
        i++;
        continue;
      }
      quoted = !quoted;
      current += ch;
    } else if (ch === ',' && !quoted) {
      names.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quoted) throw new SteepError(`--tables ${value}: a quoted name is not closed (a quote inside one is written "")`, ExitCode.badArguments);
  names.push(current);
  const trimmed = names.map((n) => n.trim());
  if (trimmed.some((n) => n === '')) throw new SteepError(`--tables ${value}: an empty table name (two commas, or one at an end)`, ExitCode.badArguments);
  return trimmed;
}

// node verify: --tables or --schema or neither (every table the node receives).
export function verifyScope(flags: { tables?: string; schema?: string }): { tables: string[] } | { schema: string } | {} {
  if (flags.tables !== undefined && flags.schema !== undefined) {
    throw new SteepError('--tables and --schema cannot be used together: name the tables, or a schema', ExitCode.badArguments);
  }
  if (flags.tables !== undefined) return { tables: parseTableList(flags.tables) };
  if (flags.schema !== undefined) {
    if (flags.schema.trim() === '') throw new SteepError('--schema: an empty schema name', ExitCode.badArguments);
    return { schema: flags.schema };
  }
  return {};
}

// node reinit: exactly one of --tables, --schema, --full.
export function reinitScope(flags: { tables?: string; schema?: string; full?: boolean }): ReinitScope {
  const given = [flags.tables !== undefined && '--tables', flags.schema !== undefined && '--schema', flags.full && '--full'].filter(Boolean);
  if (given.length === 0) {
    throw new SteepError('say what to re-copy: --tables a,b, --schema s or --full', ExitCode.badArguments);
  }
  if (given.length > 1) {
    throw new SteepError(`${given.join(' and ')} cannot be used together: re-copy tables, a schema or the whole node`, ExitCode.badArguments);
  }
  if (flags.full) return { full: true };
  return verifyScope(flags) as ReinitScope;
}

// "tables public.orders, sales.\"Line\"", "the tables of schema sales", "every table"
export function describeScope(scope: ReinitScope | {}): string {
  if ('tables' in scope) return `table${scope.tables.length === 1 ? '' : 's'} ${scope.tables.join(', ')}`;
  if ('schema' in scope) return `the tables of schema ${scope.schema}`;
  return 'every table';
}
