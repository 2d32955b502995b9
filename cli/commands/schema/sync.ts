import { Args, Flags } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { describeNotReplicated, SchemaSyncMode, schemaSyncModes, syncSchema } from '../../../lib/schema-sync';
import { askToProceed } from '../../confirm';
import { parseSchemas, resolveNodes, schemasFlag, summarize, withNodes } from '../../schema-nodes';

export default class SchemaSync extends BaseCommand<typeof SchemaSync> {
  static description =
    'Check that a target node can receive data from a source node, the step every init runs first: ' +
    'strict refuses on any difference (exit 3), manual asks, auto makes the target match the source in one transaction.';
  static examples = [
    '<%= config.bin %> schema sync node_b --from node_a',
    '<%= config.bin %> schema sync node_b --from node_a --mode auto --dry-run',
    '<%= config.bin %> schema sync node_b --from node_a --mode manual --yes',
  ];
  static args = { target: Args.string({ description: 'node that will receive data', required: true, ignoreStdin: true }) };
  static flags = {
    from: Flags.string({ description: 'source node', required: true }),
    mode: Flags.string({ description: 'what to do about differences', options: [...schemaSyncModes], default: 'strict' }),
    'dry-run': Flags.boolean({ description: 'auto: print the DDL plan, apply nothing' }),
    yes: Flags.boolean({ char: 'y', description: 'manual: proceed without asking (for scripts)' }),
    schemas: schemasFlag,
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SchemaSync);
    const schemas = parseSchemas(flags.schemas);
    const mode = flags.mode as SchemaSyncMode;
    if (args.target === flags.from) throw new SteepError('source and target must be different nodes', ExitCode.badArguments);
    const result = await this.withClient(flags.db, async (registry) => {
      const [target, source] = await resolveNodes(registry, [args.target, flags.from]);
      return withNodes([source, target], 'steep-repl schema sync', ([sourceClient, targetClient]) =>
        syncSchema({
          source: sourceClient,
          target: targetClient,
          sourceNodeId: source.node_id,
          targetNodeId: target.node_id,
          mode,
          schemas,
          dryRun: flags['dry-run'],
          confirm: flags.yes ? async () => true : (d) => askToProceed(d, source.node_id, target.node_id, 'proceed with these differences?'),
        }),
      );
    });
    if (flags.json) return this.printJson(result);
    const summary = summarize(result.differences, flags.from, args.target);
    if (result.notReplicated.length) {
      process.stderr.write(
        `warning: not replicated (logical replication cannot carry them), an init goes ahead without: ${describeNotReplicated(result.notReplicated)}\n`,
      );
    }
    switch (result.outcome) {
      case 'match':
        this.log(`node ${args.target} can receive node ${flags.from}'s tables: no blocking difference`);
        break;
      case 'confirmed':
        this.log(`differences accepted (manual mode): ${summary}; nothing was changed`);
        break;
      case 'planned':
      case 'applied':
        result.ddl.forEach((statement, i) => this.log(`${String(i + 1).padStart(3)}  ${statement};`));
        this.log(
          result.outcome === 'planned'
            ? `dry run: ${result.ddl.length} statements planned for node ${args.target}, nothing applied`
            : `applied ${result.ddl.length} statements on node ${args.target} in one transaction; its tables now match node ${flags.from}`,
        );
    }
  }
}
