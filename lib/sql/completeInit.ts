import { Queryable } from './queryable';
import { ManualBackup } from './prepareManualSlot';
import { RecoveryEnd } from './recoveryEnd';

export interface CompleteOptions {
  schema_sync?: 'strict' | 'auto' | 'manual';
  timeout?: number | string;
  lag_threshold_bytes?: number | string;
  reverse_slot_ttl?: number | string;
  // 'X/Y': the source's LSN the backup was taken at, when not the prepared slot's
  source_lsn?: string;
}

// A subscription of another database of a pg_basebackup copy: complete
// cannot drop it from here; statements run in that database remove it.
export interface OtherDatabaseSubscription {
  database: string;
  subscription: string;
  enabled: boolean;
  statements: string[];
}

export interface InitCompleteRequested {
  node_id: string;
  source_node_id: string;
  // null when restart_required
  job_id: number | null;
  backup: ManualBackup | null;
  source_lsn: string | null;
  // a failed manual init was resumed
  resumed: boolean;
  // pg_basebackup copy: where its recovery ended, what the reset removed
  recovery_end: RecoveryEnd | null;
  removed: string[];
  other_databases: OtherDatabaseSubscription[];
  // pg_basebackup copy with max_logical_replication_workers = 0: reset done,
  // no job queued; message and hint say what to do (then complete again)
  restart_required: boolean;
  message?: string;
  hint?: string;
  follow?: { status: string; channels: string[]; cancel: string };
}

// On the target's database, or on the restored copy of a pg_basebackup prepare.
export async function completeInit(db: Queryable, nodeId: string, options: CompleteOptions = {}): Promise<InitCompleteRequested> {
  const { rows } = await db.query('SELECT steep_repl.complete_init($1, $2) AS r', [nodeId, options]);
  return rows[0].r;
}
