// The schema step of an init: lib/schema-sync compares the target with the
// source and, by mode, refuses (strict, exit code 3), applies the DDL (auto)
// or proceeds after a confirmation (manual). What the source holds that
// logical replication cannot carry (unlogged, foreign, materialized views)
// strict refuses; auto and manual go ahead without it, and the init records
// it (init_progress.not_replicated) so status and the final report say so.
import { Logger } from '../../lib/log';
import { describeNotReplicated, SchemaSyncOptions, syncSchema } from '../../lib/schema-sync';
import { NotReplicated, recordNotReplicated } from '../../lib/sql/recordNotReplicated';

export type SchemaStep = Pick<SchemaSyncOptions, 'source' | 'target' | 'sourceNodeId' | 'targetNodeId' | 'mode'> & { logger: Logger };

export async function syncTargetSchema(step: SchemaStep): Promise<{ notReplicated: NotReplicated[] }> {
  // The agent runs unattended: in manual mode the start request is the
  // DBA's confirmation (node start shows the differences and asks first).
  const result = await syncSchema({
    ...step,
    confirm: async (differences) => {
      step.logger.log('warn', 'init.schema_differences_accepted', { node_id: step.targetNodeId, tables: differences.length });
      return true;
    },
  });
  const notReplicated = await recordNotReplicated(step.target, step.targetNodeId, result.notReplicated);
  if (notReplicated.length) {
    step.logger.log('warn', 'init.not_replicated', {
      node_id: step.targetNodeId,
      relations: notReplicated,
      reason: `logical replication cannot carry ${describeNotReplicated(notReplicated)}: the init goes ahead without them (mode ${step.mode})`,
    });
  }
  step.logger.log('info', 'init.schema_checked', {
    node_id: step.targetNodeId,
    mode: step.mode,
    outcome: result.outcome,
    differences: result.differences.length,
    ddl_statements: result.ddl.length,
    not_replicated: notReplicated.length,
  });
  return { notReplicated };
}
