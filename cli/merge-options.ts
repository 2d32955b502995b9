// node merge's flags, checked before anything is connected to or started
// (exit 2): which run they ask for (analyze, dry_run, record, merge — as
// start_merge decides it) and the options start_merge takes. start_merge
// checks the same again (for psql callers); here a DBA learns it without a
// round trip and with the flag names.
import { Flags } from '@oclif/core';
import { ExitCode, SteepError } from '../lib/errors';
import type { MergeMode, MergeStrategy } from '../lib/sql/mergeStatus';
import type { MergeRequest } from '../lib/sql/startMerge';
import { secondsOrInterval } from './init-start';
import { parseTableList } from './verify-scope';

export const strategies: MergeStrategy[] = ['prefer-a', 'prefer-b', 'last-modified', 'manual'];

export const mergeFlags = {
  analyze: Flags.boolean({ description: 'count per table the rows identical, only on A, only on B and conflicting, with sample keys; read-only' }),
  strategy: Flags.string({
    description:
      'how a conflict (same primary key, different row) is decided: prefer-a, prefer-b, last-modified (the later --column wins), ' +
      'or manual (record every conflict in steep_repl.merge_conflicts for you to resolve, then --apply)',
    options: [...strategies],
  }),
  column: Flags.string({ description: '--strategy last-modified: the timestamptz, timestamp or date column every table has (a NULL loses, a tie goes to A)' }),
  'dry-run': Flags.boolean({ description: 'with --strategy: the analysis and what the strategy would write on each node; nothing is written' }),
  apply: Flags.boolean({ description: 'merge applying the resolutions of the last --strategy manual run of these nodes (refused while any is unresolved)' }),
  tables: Flags.string({
    description: 'comma-separated tables of A, each schema.table or a name only one schema has; quote a name as in SQL: \'public."My ""T""able",sales.orders\'',
  }),
  schema: Flags.string({ description: 'every replicated table of this schema (default: every replicated table of A)' }),
  quiesce: Flags.boolean({ description: 'a merge fails, writing nothing, if either node was written during it (for applications stopped during the merge)' }),
  yes: Flags.boolean({ char: 'y', description: 'merge without asking (for scripts; required without a terminal)' }),
  timeout: Flags.string({ description: 'fail the run if its subscriptions have not caught up this long after it started (seconds, or an interval like "2 hours"; up to 1 day; default 1 hour); the subscriptions stay' }),
};

export interface MergeFlags {
  analyze?: boolean;
  strategy?: string;
  column?: string;
  'dry-run'?: boolean;
  apply?: boolean;
  tables?: string;
  schema?: string;
  quiesce?: boolean;
  yes?: boolean;
  timeout?: string;
  wait?: boolean;
  cancel?: boolean;
}

export interface MergeAsked {
  mode: MergeMode;
  // start_merge's options
  options: Omit<MergeRequest, 'nodeA' | 'nodeB'>;
  // a merge writes on both nodes: asked first unless --yes
  writes: boolean;
}

const refuse = (message: string): never => {
  throw new SteepError(message, ExitCode.badArguments);
};

// --cancel alone (with --json); otherwise one of --analyze, --strategy, --apply.
export function mergeRequest(nodeA: string, nodeB: string, flags: MergeFlags): MergeAsked | { cancel: true } {
  if (nodeA === nodeB) refuse(`node-a and node-b are both ${nodeA}: a merge needs two nodes`);
  const given = (names: Array<keyof MergeFlags>) =>
    names.filter((n) => (n === 'wait' ? flags.wait === false : flags[n] !== undefined && flags[n] !== false)).map((n) => (n === 'wait' ? '--no-wait' : `--${n}`));
  if (flags.cancel) {
    const others = given(['analyze', 'strategy', 'column', 'dry-run', 'apply', 'tables', 'schema', 'quiesce', 'timeout', 'wait']);
    if (others.length) refuse(`--cancel cancels the merge under way on ${nodeA}; it takes no ${others.join(', ')}`);
    return { cancel: true };
  }
  if (flags.analyze && flags.strategy) {
    refuse('--analyze and --strategy cannot be used together: --analyze counts only; --strategy <s> --dry-run also shows what a strategy would write');
  }
  if (flags.apply) {
    if (flags.analyze) refuse('--apply and --analyze cannot be used together: --apply merges with the resolutions of a --strategy manual run');
    if (flags.strategy && flags.strategy !== 'manual') refuse(`--apply applies a manual merge's resolutions: it goes with --strategy manual (or alone), not ${flags.strategy}`);
    if (flags['dry-run']) refuse('--apply and --dry-run cannot be used together: run --strategy manual again to see the conflicts');
  }
  const strategy = (flags.apply ? 'manual' : flags.strategy) as MergeStrategy | undefined;
  if (flags['dry-run'] && !strategy) refuse('--dry-run shows what a strategy would write: give --strategy');
  if (!flags.analyze && !strategy) {
    refuse('say what to do: --analyze, --strategy prefer-a|prefer-b|last-modified|manual (with --dry-run to see what it would write), --apply or --cancel');
  }
  if (flags.column !== undefined && strategy !== 'last-modified') refuse('--column names the timestamp column of --strategy last-modified');
  if (strategy === 'last-modified' && (flags.column ?? '').trim() === '') {
    refuse('--strategy last-modified needs --column <name>: a timestamptz, timestamp or date column of every table');
  }
  const mode: MergeMode = flags.analyze ? 'analyze' : flags['dry-run'] ? 'dry_run' : strategy === 'manual' && !flags.apply ? 'record' : 'merge';
  if (flags.quiesce && mode !== 'merge') refuse('--quiesce checks that neither node was written while a merge exchanged rows: it goes with a merge, not with --analyze, --dry-run or a manual record');

  const options: MergeAsked['options'] = mode === 'analyze' ? { analyze: true } : { strategy };
  if (mode === 'dry_run') options.dry_run = true;
  if (flags.apply) options.apply = true;
  if (flags.column !== undefined) options.column = flags.column;
  if (flags.quiesce) options.quiesce = true;
  if (flags.tables !== undefined && flags.schema !== undefined) refuse('--tables and --schema cannot be used together: name the tables, or a schema');
  if (flags.tables !== undefined) options.tables = parseTableList(flags.tables);
  if (flags.schema !== undefined) {
    if (flags.schema.trim() === '') refuse('--schema: an empty schema name');
    options.schema = flags.schema;
  }
  // as node start's: start_merge reads and range-checks seconds or an interval text
  if (flags.timeout !== undefined) options.timeout = secondsOrInterval(flags.timeout);
  return { mode, options, writes: mode === 'merge' };
}

// "prefer-a (node_a's row wins)", for the question and the result lines.
export function strategyText(strategy: string | null | undefined, nodeA: string, nodeB: string, column?: unknown): string {
  switch (strategy) {
    case 'prefer-a':
      return `prefer-a (${nodeA}'s row wins)`;
    case 'prefer-b':
      return `prefer-b (${nodeB}'s row wins)`;
    case 'last-modified':
      return `last-modified (the later ${typeof column === 'string' ? column : 'column'} wins)`;
    case 'manual':
      return 'manual (your resolutions)';
    default:
      return String(strategy ?? '');
  }
}
