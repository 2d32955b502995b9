// The schema step of an init: lib/schema-sync compares the target with the
// source and, by mode, refuses (strict, exit code 3), applies the DDL (auto)
// or proceeds after a confirmation (manual).
import { Logger } from '../../lib/log';
import { SchemaSyncOptions, syncSchema } from '../../lib/schema-sync';

export type SchemaStep = Pick<SchemaSyncOptions, 'source' | 'target' | 'sourceNodeId' | 'targetNodeId' | 'mode'> & { logger: Logger };

export async function syncTargetSchema(step: SchemaStep): Promise<void> {
  // The agent runs unattended: in manual mode the start request is the
  // DBA's confirmation (node start shows the differences and asks first).
  const result = await syncSchema({
    ...step,
    confirm: async (differences) => {
      step.logger.log('warn', 'init.schema_differences_accepted', { node_id: step.targetNodeId, tables: differences.length });
      return true;
    },
  });
  step.logger.log('info', 'init.schema_checked', {
    node_id: step.targetNodeId,
    mode: step.mode,
    outcome: result.outcome,
    differences: result.differences.length,
    ddl_statements: result.ddl.length,
  });
}
